/**
 * `webdpo data` and inspectDataset: rows per split (save_to_disk, folder and file layouts), format, lengths and
 * what max_length / max_prompt_length would cut, and the tables' alignment.
 */
import assert from "node:assert/strict";
import { loadDataset, loadTokenizer } from "../mod.ts";
import {
  type DatasetReport,
  formatDatasetReport,
  formatSplitSizes,
  inspectDataset,
} from "../src/data/inspect.ts";
import { splitSizes } from "../src/data/split_sizes.ts";
import { arrowBytes, parquetBytes, withTemp } from "./dataset_layouts.ts";

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

const run = async (args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}src/cli/main.ts`, "data", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
};

Deno.test("webdpo data prints the report; a bad command line exits 2", async () => {
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
  const badSplit = await run([DATA, "--model", MODEL, "--split", "train[:5"]);
  assert.equal(badSplit.code, 2);
  assert.match(
    badSplit.err,
    /--split: split "train\[:5": "train\[:5" is not a split or a slice of one; a split is/,
  );
  const both = await run([DATA, "--model", MODEL, "--split", "train", "--all_splits"]);
  assert.equal(both.code, 2);
  assert.match(both.err, /give --split or --all_splits, not both/);
});

/** The columns' right edges in a table line (the label's words excluded). */
const rightEdges = (line: string, label: number) =>
  [...line.slice(label).matchAll(/\S(?=\s|$)/g)].map((m) => label + m.index!);

Deno.test("the tables' headers line up with their columns", () => {
  const stats = { p50: 7, p90: 1234, p99: 12345, max: 123456 };
  const report: DatasetReport = {
    rows: 3,
    format: "standard",
    prompt: "implicit",
    lengths: { prompt: stats, chosen: stats, rejected: stats },
    promptTruncated: 0,
    answerTruncated: 1,
    answerLost: 0,
  };
  const lines = formatDatasetReport("d", report, { maxLength: 8, maxPromptLength: 4 }).split("\n");
  assert.match(lines[1], /^token lengths +p50 +p90 +p99 +max$/);
  for (const row of lines.slice(2, 5)) assert.deepEqual(rightEdges(row, 16), rightEdges(lines[1], 16), row);
  const sizes = formatSplitSizes([
    { split: "train", rows: 160800, files: 12 },
    { split: "test_sft_generation", rows: 5, files: 1 },
    { split: "odd", problem: "x: no file webdpo reads" },
  ], ["train[:10%]+test_sft_generation"]).split("\n");
  const width = "  test_sft_generation ".length;
  assert.match(sizes[0], /^rows per split +rows +files$/);
  assert.deepEqual(rightEdges(sizes[1], width).slice(0, 2), rightEdges(sizes[0], width));
  assert.deepEqual(rightEdges(sizes[2], width).slice(0, 2), rightEdges(sizes[0], width));
  assert.match(sizes[1], /^ {2}train +160800 +12 {2}← train\[:10%\]\+test_sft_generation$/);
  assert.match(sizes[3], /^ {2}odd +unreadable: x: no file webdpo reads$/);
});

Deno.test("rows per split: every split of save_to_disk, hub-style and keyword-named folders, and of a file", async () => {
  const lines = (await Deno.readTextFile(DATA)).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  await withTemp(async (dir) => {
    // save_to_disk DatasetDict: its splits in dataset_dict.json's order, rows from the Arrow batches
    const saved = `${dir}/saved`;
    const splits: [string, number][] = [["train", 7], ["validation", 2], ["test", 3]];
    await Deno.mkdir(saved);
    await Deno.writeTextFile(
      `${saved}/dataset_dict.json`,
      JSON.stringify({ splits: splits.map(([s]) => s) }),
    );
    let at = 0;
    for (const [split, n] of splits) {
      await Deno.mkdir(`${saved}/${split}`);
      await Deno.writeFile(
        `${saved}/${split}/data-00000-of-00001.arrow`,
        arrowBytes(lines.slice(at, at + n)),
      );
      await Deno.writeTextFile(
        `${saved}/${split}/state.json`,
        JSON.stringify({ _data_files: [{ filename: "data-00000-of-00001.arrow" }] }),
      );
      at += n;
    }
    assert.deepEqual(await splitSizes(saved), [
      { split: "train", rows: 7, files: 1 },
      { split: "validation", rows: 2, files: 1 },
      { split: "test", rows: 3, files: 1 },
    ]);
    // a hub-style folder: sharded Parquet splits (rows from the metadata), any split name
    const hub = `${dir}/hub`;
    await Deno.mkdir(`${hub}/data`, { recursive: true });
    await Deno.writeFile(
      `${hub}/data/train_prefs-00000-of-00002.parquet`,
      parquetBytes(lines.slice(0, 4), 3),
    );
    await Deno.writeFile(`${hub}/data/train_prefs-00001-of-00002.parquet`, parquetBytes(lines.slice(4, 9)));
    await Deno.writeFile(`${hub}/data/test_prefs-00000-of-00001.parquet`, parquetBytes(lines.slice(9, 11)));
    assert.deepEqual(await splitSizes(hub), [
      { split: "test_prefs", rows: 2, files: 1 },
      { split: "train_prefs", rows: 9, files: 2 },
    ]);
    // split keywords in file names (JSONL read through); a split with no readable file is listed with why
    const kw = `${dir}/kw`;
    await Deno.mkdir(kw);
    await Deno.writeTextFile(`${kw}/train.jsonl`, lines.slice(0, 5).map((r) => JSON.stringify(r)).join("\n"));
    await Deno.writeTextFile(`${kw}/dev.jsonl`, JSON.stringify(lines[5]) + "\n");
    await Deno.writeTextFile(`${kw}/test.csv`, "a,b\n");
    const kwSizes = await splitSizes(kw);
    assert.deepEqual(kwSizes.slice(0, 2), [
      { split: "train", rows: 5, files: 1 },
      { split: "validation", rows: 1, files: 1 },
    ]);
    assert.equal(kwSizes[2].split, "test");
    assert.match("problem" in kwSizes[2] ? kwSizes[2].problem : "", /split "test" has no file webdpo reads/);
    // a single file: its one split
    assert.deepEqual(await splitSizes(DATA), [{ split: "train", rows: 122, files: 1 }]);

    // webdpo data: the table, then the report of the split (spec) read
    const out = await run([saved, "--model", MODEL, "--split", "validation+test[:1]"]);
    assert.equal(out.code, 0, out.err);
    assert.match(
      out.out,
      /^rows per split +rows +files\n {2}train +7 +1\n {2}validation +2 +1 {2}← validation\+test\[:1\]\n {2}test +3 +1 {2}← validation\+test\[:1\]\n/,
    );
    assert.match(out.out, /saved \[validation\+test\[:1\]\]: 3 rows, conversational, explicit prompt/);
    const every = await run([hub, "--model", MODEL, "--all_splits"]);
    assert.equal(every.code, 0, every.err);
    assert.match(
      every.out,
      /hub \[test_prefs\]: 2 rows, conversational[^]*hub \[train_prefs\]: 9 rows, conversational/,
    );
  });
});
