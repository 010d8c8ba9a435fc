/** `webdpo data` and inspectDataset: format, lengths and what max_length / max_prompt_length would cut. */
import assert from "node:assert/strict";
import { loadDataset, loadTokenizer } from "../mod.ts";
import { inspectDataset } from "../src/data/inspect.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DATA = `${ROOT}examples/tiny-chat/data/dpo_test.jsonl`;
const MODEL = `${ROOT}examples/tiny-chat`;

Deno.test("inspectDataset reports the format, the lengths and the rows each limit would cut", async () => {
  const tok = await loadTokenizer(MODEL);
  const ds = await loadDataset(DATA);
  const loose = await inspectDataset(ds, tok, { maxLength: 512, maxPromptLength: 128 });
  assert.equal(loose.rows, 122);
  assert.equal(loose.format, "conversational");
  assert.equal(loose.prompt, "explicit");
  assert.deepEqual([loose.promptTruncated, loose.answerTruncated, loose.answerLost], [0, 0, 0]);
  const p = loose.lengths.prompt;
  assert.ok(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max && p.p50 > 0);
  const longest = Math.max(loose.lengths.chosen.max, loose.lengths.rejected.max);
  // every prompt is longer than 16 tokens and every answer longer than 24 − 16 = 8: all are cut, none lost
  assert.ok(p.p50 > 16 && Math.min(loose.lengths.chosen.p50, loose.lengths.rejected.p50) > 8);
  const tight = await inspectDataset(ds, tok, { maxLength: 24, maxPromptLength: 16 });
  assert.deepEqual([tight.promptTruncated, tight.answerTruncated, tight.answerLost], [122, 122, 0]);
  // no room left for any answer token
  const none = await inspectDataset(ds, tok, { maxLength: 16, maxPromptLength: 16 });
  assert.equal(none.answerLost, 122);
  // room for every answer: nothing cut
  const exact = await inspectDataset(ds, tok, { maxLength: p.max + longest, maxPromptLength: p.max });
  assert.deepEqual([exact.promptTruncated, exact.answerTruncated, exact.answerLost], [0, 0, 0]);
});

Deno.test("webdpo data prints the report; a bad command line exits 2", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}src/cli/main.ts`, "data", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
  };
  const ok = await run([DATA, "--model", MODEL, "--max_length", "16", "--max_prompt_length", "16"]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /122 rows, conversational, explicit prompt/);
  assert.match(ok.out, /answers lost entirely +122 \(100\.0%\) +← these rows train on nothing/);
  const bad = await run([DATA]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /give one DATASET and --model DIR/);
  const badLen = await run([DATA, "--model", MODEL, "--max_length", "x"]);
  assert.equal(badLen.code, 2);
  assert.match(badLen.err, /--max_length must be a positive integer/);
});
