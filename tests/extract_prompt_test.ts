/**
 * Implicit prompts with TRL 1.13's semantics (trl.data_utils.maybe_extract_prompt, outputs recorded by TRL in
 * tests/fixtures/datasets/extract_prompt_cases.json), and the published files that need them: raw hh-rlhf rows in
 * a .jsonl.gz, UltraFeedback-shaped rows.
 */
import assert from "node:assert/strict";
import { DatasetError, extractPrompt, loadDataset, maybeExtractPrompt, tokenizeRow } from "../mod.ts";
import { renderRow } from "../src/data/tokenize_row.ts";
import { ToyTokenizer } from "./toy_tokenizer.ts";

/** A character-level toy tokenizer over the characters of `texts` (and of the chat template's markup). */
function charTokenizer(texts: string[], chatTemplate?: string): ToyTokenizer {
  const chars = new Set(texts.flatMap((t) => [...t]));
  for (const c of "<|>usertaivmn\n") chars.add(c);
  return new ToyTokenizer({
    vocab: ["<pad>", "<s>", "</s>", ...chars],
    pad_token_id: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    bos_token: "<s>",
    eos_token: "</s>",
    chat_template: chatTemplate,
  });
}

const FIXTURES = new URL("./fixtures/datasets/", import.meta.url).pathname;
const cases = JSON.parse(await Deno.readTextFile(`${FIXTURES}extract_prompt_cases.json`)).cases as {
  input: Record<string, unknown>;
  expected: Record<string, unknown> | null;
}[];

Deno.test("maybeExtractPrompt gives TRL's output on every recorded case, and a DatasetError where TRL raises", () => {
  assert.ok(cases.length >= 19);
  for (const [i, c] of cases.entries()) {
    if (c.expected === null) {
      assert.throws(() => maybeExtractPrompt(c.input, `case ${i}`), (e: unknown) => {
        assert.ok(e instanceof DatasetError, String(e));
        assert.match(e.message, /case \d+: cannot find the prompt: "chosen" is empty/);
        return true;
      });
      continue;
    }
    const got = maybeExtractPrompt(c.input);
    for (const k of ["prompt", "chosen", "rejected"]) {
      assert.deepEqual(got[k], c.expected[k], `case ${i} ${k}`);
    }
    // TRL's map keeps the row's other columns
    for (const k of Object.keys(c.input)) if (!(k in c.expected)) assert.deepEqual(got[k], c.input[k]);
  }
});

Deno.test("extractPrompt counts code points, not UTF-16 units, and keeps TRL's quirks", () => {
  // an emoji (two UTF-16 units) just before the split
  assert.deepEqual(extractPrompt({ chosen: "ab😀x", rejected: "ab😀y" }), {
    prompt: "ab😀",
    chosen: "x",
    rejected: "y",
  });
  // a difference right after a space: the space starts the answers
  assert.deepEqual(extractPrompt({ chosen: "Q: A", rejected: "Q: B" }), {
    prompt: "Q:",
    chosen: " A",
    rejected: " B",
  });
  // the first characters differ and chosen ends in a space: Python's chosen[-1] moves the split before the end
  assert.deepEqual(extractPrompt({ chosen: "yes ", rejected: "no" }), {
    prompt: "yes",
    chosen: " ",
    rejected: "o",
  });
  // conversations: split by messages
  const u = { role: "user", content: "hi" };
  const got = extractPrompt({
    chosen: [u, { role: "assistant", content: "a" }],
    rejected: [u, { role: "assistant", content: "b" }],
  });
  assert.deepEqual(got.prompt, [u]);
  // kinds that differ: an error naming the row
  assert.throws(
    () => extractPrompt({ chosen: "x", rejected: [u] as never }, "file.jsonl line 3"),
    /file\.jsonl line 3: "chosen" and "rejected" must both be strings/,
  );
  // a prompt of the answers' kind is kept as it is
  const row = { prompt: "P", chosen: "P a", rejected: "P b" };
  assert.equal(maybeExtractPrompt(row), row);
});

Deno.test("raw hh-rlhf rows from the published .jsonl.gz load and tokenize with the implicit prompt", async () => {
  const ds = await loadDataset(`${FIXTURES}hh-rlhf-sample.jsonl.gz`);
  const rows = [];
  for await (const r of ds) rows.push(r);
  assert.equal(rows.length, 6);
  assert.match(rows[0].where, /hh-rlhf-sample\.jsonl\.gz line 1$/);
  assert.deepEqual(Object.keys(rows[0].row).sort(), ["chosen", "rejected"]);
  const tok = charTokenizer(rows.flatMap((r) => [String(r.row.chosen), String(r.row.rejected)]));
  for (const r of rows) {
    const rendered = renderRow(r.row, tok, r.where);
    assert.ok(rendered.prompt.startsWith("\n\nHuman:"), r.where);
    assert.equal(rendered.prompt + rendered.chosen, r.row.chosen);
    assert.equal(rendered.prompt + rendered.rejected, r.row.rejected);
    const t = tokenizeRow(r.row, tok, { maxLength: 4096, maxPromptLength: 2048, warn: () => {} });
    assert.ok(t.chosen_labels.some((l) => l !== -100), "the chosen answer has scored tokens");
  }
});

Deno.test("a corrupt .jsonl.gz is a DatasetError naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gz = await Deno.readFile(`${FIXTURES}hh-rlhf-sample.jsonl.gz`);
    await Deno.writeFile(`${dir}/bad.jsonl.gz`, gz.slice(0, 200));
    const ds = await loadDataset(`${dir}/bad.jsonl.gz`);
    await assert.rejects(
      async () => {
        for await (const _ of ds) { /* read it all */ }
      },
      (e: unknown) => e instanceof DatasetError && /bad\.jsonl\.gz: not a readable gzip file/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UltraFeedback-shaped rows (a prompt string, answers that repeat it) render through the chat template", async () => {
  const ds = await loadDataset(`${FIXTURES}ultrafeedback-shaped.jsonl`);
  const template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}" +
    "{% if add_generation_prompt %}<|assistant|>{% endif %}";
  const rows = [];
  for await (const r of ds) rows.push(r);
  assert.equal(rows.length, 2);
  const texts = rows.flatMap((r) =>
    [r.row.chosen, r.row.rejected].flatMap((m) => (m as { content: string }[]).map((x) => x.content))
  );
  const tok = charTokenizer(texts, template);
  const first = renderRow(rows[0].row, tok, rows[0].where);
  assert.equal(first.prompt, "<|user|>What is 2 + 3?\n<|assistant|>");
  assert.equal(first.chosen, "2 + 3 = 5.\n");
  const second = renderRow(rows[1].row, tok, rows[1].where);
  assert.equal(second.prompt, "<|system|>Be brief.\n<|user|>Name a colour.\n<|assistant|>");
  assert.equal(second.rejected, "I cannot answer that.\n");
});

Deno.test("a datasets.save_to_disk folder loads by split; a split folder alone too", async () => {
  const dict = `${FIXTURES}hh-save-to-disk`;
  const read = async (path: string, split?: string) => {
    const out = [];
    for await (const r of await loadDataset(path, split ? { split } : {})) out.push(r);
    return out;
  };
  const train = await read(dict);
  assert.equal(train.length, 6);
  assert.match(train[5].where, /hh-save-to-disk\/train\/data-00000-of-00001\.arrow row 5$/);
  // the same rows as the published .jsonl.gz
  const gz = await read(`${FIXTURES}hh-rlhf-sample.jsonl.gz`);
  assert.deepEqual(train.map((r) => r.row), gz.map((r) => r.row));
  assert.equal((await read(dict, "test")).length, 2);
  assert.equal((await read(`${dict}/test`)).length, 2);
  await assert.rejects(
    () => loadDataset(dict, { split: "validation" }),
    /no split "validation".*train, test/,
  );
});

Deno.test("Arrow rows with conversations come back as plain messages", async () => {
  const { Field, Float64, List, Struct, Table, tableToIPC, Utf8, vectorFromArray } = await import(
    "apache-arrow"
  );
  const conversation = new List(
    new Field("item", new Struct([new Field("role", new Utf8()), new Field("content", new Utf8())])),
  );
  const rows = [{
    prompt: "Hi?",
    chosen: [{ role: "user", content: "Hi?" }, { role: "assistant", content: "Hello." }],
    rejected: [{ role: "user", content: "Hi?" }, { role: "assistant", content: "Go away." }],
    score: 7,
  }];
  const dir = await Deno.makeTempDir();
  try {
    const table = new Table({
      prompt: vectorFromArray(rows.map((r) => r.prompt), new Utf8()),
      chosen: vectorFromArray(rows.map((r) => r.chosen), conversation),
      rejected: vectorFromArray(rows.map((r) => r.rejected), conversation),
      score: vectorFromArray(rows.map((r) => r.score), new Float64()),
    });
    await Deno.writeFile(`${dir}/data-00000-of-00001.arrow`, tableToIPC(table, "stream"));
    await Deno.writeTextFile(
      `${dir}/state.json`,
      JSON.stringify({ _data_files: [{ filename: "data-00000-of-00001.arrow" }] }),
    );
    const got = [];
    for await (const r of await loadDataset(dir)) got.push(r.row);
    assert.deepEqual(got, rows);
    // a corrupt file is a DatasetError naming it
    await Deno.writeFile(`${dir}/data-00000-of-00001.arrow`, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    await assert.rejects(async () => {
      for await (const _ of await loadDataset(dir)) { /* read */ }
    }, (e: unknown) => e instanceof DatasetError && /data-00000-of-00001\.arrow/.test(e.message));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
