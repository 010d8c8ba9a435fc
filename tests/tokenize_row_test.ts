import assert from "node:assert/strict";
import { collate, renderRow, resolveLengths, tokenizeRow } from "../src/data/tokenize_row.ts";
import { type ToySpec, ToyTokenizer } from "./toy_tokenizer.ts";

interface Case {
  id: string;
  kind: string;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  error?: string;
  warnings?: string[];
}
const vectors = JSON.parse(await Deno.readTextFile(new URL("./fixtures/dpo/vectors.json", import.meta.url)));
const cases = vectors.cases as Case[];

for (const c of cases.filter((c) => c.kind === "tokenize_row")) {
  Deno.test(`golden ${c.id}`, () => {
    const tok = new ToyTokenizer(c.inputs.tokenizer as ToySpec);
    const warnings: string[] = [];
    const lengths = resolveLengths({
      maxLength: c.config.max_length as number | null,
      maxPromptLength: c.config.max_prompt_length as number | null,
      warn: (m) => warnings.push(m),
    });
    const row = { prompt: c.inputs.prompt, chosen: c.inputs.chosen, rejected: c.inputs.rejected };
    const opts = {
      ...lengths,
      truncationMode: c.config.truncation_mode as "keep_end" | "keep_start",
      labelPadTokenId: c.config.label_pad_token_id as number,
    };
    if (c.error) {
      assert.throws(() => tokenizeRow(row, tok, opts, "row 0"), /row 0/);
      return;
    }
    const out = tokenizeRow(row, tok, opts, "row 0");
    const want = c.outputs!;
    if (want.rendered) assert.deepEqual(renderRow(row, tok, "row 0"), want.rendered);
    for (const k of Object.keys(out).filter((k) => k !== "prompt_input_ids")) {
      assert.deepEqual(out[k as keyof typeof out], want[k], k);
    }
    assert.equal(warnings.length, c.warnings?.length ?? 0, `warnings ${warnings}`);
  });
}

for (const c of cases.filter((c) => c.kind === "collate")) {
  Deno.test(`golden ${c.id}`, () => {
    const pad = (c.config.padding_value as number | null) ?? (c.inputs.pad_token_id as number | null) ??
      (c.inputs.eos_token_id as number);
    const b = collate(c.inputs.rows as never, {
      padTokenId: pad,
      labelPadTokenId: c.config.label_pad_token_id as number,
    });
    const rows = (a: Int32Array) =>
      Array.from({ length: 2 * b.B }, (_, i) => Array.from(a.subarray(i * b.T, (i + 1) * b.T)));
    assert.deepEqual(rows(b.inputIds), c.outputs!.input_ids);
    assert.deepEqual(rows(b.attentionMask), c.outputs!.attention_mask);
    assert.deepEqual(rows(b.labels), c.outputs!.labels);
  });
}

Deno.test("bad rows name the row and the problem", () => {
  const tok = new ToyTokenizer(cases.find((c) => c.kind === "tokenize_row")!.inputs.tokenizer as ToySpec);
  const opts = { maxLength: 64, maxPromptLength: 32 };
  assert.throws(
    () => tokenizeRow({ prompt: "hi", rejected: "no" }, tok, opts, "data.jsonl row 7"),
    /data\.jsonl row 7: the "chosen" column is missing/,
  );
  assert.throws(
    () => tokenizeRow({ prompt: "hi", chosen: "", rejected: "no" }, tok, opts, "row 3"),
    /row 3: the "chosen" answer is empty/,
  );
  assert.throws(
    () => tokenizeRow({ prompt: 5, chosen: "a", rejected: "b" }, tok, opts, "row 4"),
    /row 4: "prompt" must be a string/,
  );
  assert.throws(
    () => tokenizeRow({ prompt: "x", chosen: "a", rejected: [1] }, tok, opts, "row 5"),
    /row 5: "chosen" and "rejected" must both be/,
  );
  assert.throws(
    () =>
      tokenizeRow({ prompt: "x", chosen: "a", rejected: "b" }, tok, {
        ...opts,
        truncationMode: "middle" as never,
      }),
    /truncation_mode/,
  );
});
