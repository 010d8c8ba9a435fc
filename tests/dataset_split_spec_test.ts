/**
 * Split specs as datasets' load_dataset(split=...) takes them: train[:100], train[10:20], train[:10%],
 * train[-5%:], train[10%:20%], train+test, (pct1_dropremainder); the percent rounding (closest: ties to even) on
 * hand-derived edge cases; the errors; and the rows each spec selects from files, folders and save_to_disk.
 */
import assert from "node:assert/strict";
import { loadDataset, type Row } from "../src/data/dataset.ts";
import { parseSplitSpec, percentClosest, sliceRows } from "../src/data/split_spec.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";
import { arrowBytes, parquetBytes, withTemp } from "./dataset_layouts.ts";

/** The [start, end) rows spec `spec` (one part) selects of n rows. */
const range = (spec: string, n: number) => {
  const { start, end } = sliceRows(parseSplitSpec(spec)[0], n, spec);
  return [start, end];
};

Deno.test("split specs parse as datasets parses them", () => {
  const one = (spec: string) => {
    const [p, ...rest] = parseSplitSpec(spec);
    assert.equal(rest.length, 0, spec);
    return [p.split, p.from, p.to, p.unit, p.rounding];
  };
  assert.deepEqual(one("train"), ["train", null, null, "abs", null]);
  assert.deepEqual(one("train[:100]"), ["train", null, 100, "abs", null]);
  assert.deepEqual(one("train[10:20]"), ["train", 10, 20, "abs", null]);
  assert.deepEqual(one("train[-5:]"), ["train", -5, null, "abs", null]);
  assert.deepEqual(one("train[:]"), ["train", null, null, "abs", null]);
  assert.deepEqual(one("train[:10%]"), ["train", null, 10, "%", "closest"]);
  assert.deepEqual(one("train[-5%:]"), ["train", -5, null, "%", "closest"]);
  assert.deepEqual(one("train[10%:20%]"), ["train", 10, 20, "%", "closest"]);
  assert.deepEqual(one("train[:10%](closest)"), ["train", null, 10, "%", "closest"]);
  assert.deepEqual(one("train[:10%](pct1_dropremainder)"), ["train", null, 10, "%", "pct1_dropremainder"]);
  // a % on either boundary makes both percentages (datasets' parse: one unit per slice)
  assert.deepEqual(one("train[10%:20]"), ["train", 10, 20, "%", "closest"]);
  // digits with single underscores, as Python's int(); -0 is 0
  assert.deepEqual(one("train[1_000:2_0_0_0]"), ["train", 1000, 2000, "abs", null]);
  assert.deepEqual(one("train[-0:]"), ["train", 0, null, "abs", null]);
  // split names: words joined by dots, any script's letters and digits
  assert.deepEqual(one("train_prefs"), ["train_prefs", null, null, "abs", null]);
  assert.deepEqual(one("test.v2[:3]"), ["test.v2", null, 3, "abs", null]);
  assert.deepEqual(one("entraînement"), ["entraînement", null, null, "abs", null]);
  // + joins parts, with or without spaces
  const parts = parseSplitSpec("train[:50%] + test");
  assert.deepEqual(parts.map((p) => [p.split, p.text]), [["train", "train[:50%]"], ["test", "test"]]);
  assert.deepEqual(parseSplitSpec("train+train[-1:]").map((p) => p.text), ["train", "train[-1:]"]);
  // different roundings only where the first part or this one slices by row numbers
  assert.equal(parseSplitSpec("train[:10]+test[:10%](pct1_dropremainder)").length, 2);
  assert.equal(parseSplitSpec("train[:10%](pct1_dropremainder)+test[:10]").length, 2);
});

Deno.test("malformed split specs are DatasetErrors naming the spec and what is allowed", () => {
  const bad: [string, RegExp][] = [
    ["", /an empty part/],
    ["train+", /an empty part/],
    ["+test", /an empty part/],
    ["train[:x]", /"train\[:x\]" is not a split or a slice of one/],
    ["train[5]", /"train\[5\]" is not a split/],
    ["train[1:2:3]", /is not a split/],
    ["train[:10.5%]", /is not a split/],
    ["train[+5:]", /is not a split/],
    ["train [:5]", /is not a split/],
    [" train", /is not a split/],
    ["tr-ain", /is not a split/],
    ["train[:5%%]", /is not a split/],
    ["train[:1__0]", /1__0 in train\[:1__0\] is not a whole number/],
    ["train[_1:]", /_1 in train\[_1:\] is not a whole number/],
    ["train[:1_]", /1_ in train\[:1_\] is not a whole number/],
    ["train[:101%]", /101% in train\[:101%\] is beyond ±100%/],
    ["train[-101%:]", /-101% in .* is beyond ±100%/],
    ["train[:10%](floor)", /unknown rounding \(floor\) in train\[:10%\]\(floor\)/],
    ["train[:10%]()", /unknown rounding \(\)/],
    ["train[:10](closest)", /a rounding in train\[:10\]\(closest\) applies only to a percent slice/],
    ["train(closest)", /applies only to a percent slice/],
    [
      "train[:10%]+test[:10%](pct1_dropremainder)",
      /test\[:10%\]\(pct1_dropremainder\) rounds pct1_dropremainder but train\[:10%\] closest/,
    ],
  ];
  for (const [spec, re] of bad) {
    assert.throws(
      () => parseSplitSpec(spec),
      (e: unknown) =>
        e instanceof DatasetError && e.message.startsWith(`split "${spec}": `) && re.test(e.message) &&
        /a split is NAME or NAME\[from:to\] .* joined with \+ \(train\+test/.test(e.message),
      spec,
    );
  }
});

Deno.test("percent boundaries round to the closest row, ties to even (datasets' round(b·n/100))", () => {
  // b·n/100 by hand: 10% of 5 = 0.5 → 0; of 14 = 1.4 → 1; of 15 = 1.5 → 2; of 16 = 1.6 → 2; of 25 = 2.5 → 2;
  // of 35 = 3.5 → 4; of 45 = 4.5 → 4
  assert.deepEqual([5, 14, 15, 16, 25, 35, 45].map((n) => percentClosest(10, n)), [0, 1, 2, 2, 2, 4, 4]);
  // 33% of 50 = 16.5 → 16; of 150 = 49.5 → 50; of 100 = 33; of 101 = 33.33 → 33; of 103 = 33.99 → 34
  assert.deepEqual([50, 150, 100, 101, 103].map((n) => percentClosest(33, n)), [16, 50, 33, 33, 34]);
  // negative: -5% of 10 = -0.5 → 0 (not -0); of 30 = -1.5 → -2; of 50 = -2.5 → -2; of 70 = -3.5 → -4
  assert.ok(Object.is(percentClosest(-5, 10), 0));
  assert.deepEqual([30, 50, 70, 11].map((n) => percentClosest(-5, n)), [-2, -2, -4, -1]);
  // 0% and ±100% are exact
  assert.deepEqual([percentClosest(0, 7), percentClosest(100, 7), percentClosest(-100, 7)], [0, 7, -7]);
  // large splits: 1% of 12,345,650 = 123,456.5 → 123,456; of 12,345,750 = 123,457.5 → 123,458
  assert.deepEqual([percentClosest(1, 12_345_650), percentClosest(1, 12_345_750)], [123_456, 123_458]);
});

Deno.test("each form selects the rows datasets selects", () => {
  // row numbers: clamped like Python list slices (datasets ≥ 2.17)
  assert.deepEqual(range("train", 10), [0, 10]);
  assert.deepEqual(range("train[:100]", 150), [0, 100]);
  assert.deepEqual(range("train[:100]", 40), [0, 40]);
  assert.deepEqual(range("train[10:20]", 100), [10, 20]);
  assert.deepEqual(range("train[10:20]", 15), [10, 15]);
  assert.deepEqual(range("train[-5:]", 10), [5, 10]);
  assert.deepEqual(range("train[-200:]", 100), [0, 100]);
  assert.deepEqual(range("train[:-200]", 100), [0, 0]);
  assert.deepEqual(range("train[1:-1]", 10), [1, 9]);
  assert.deepEqual(range("train[50:10]", 100), [50, 10]); // from ≥ to: nothing
  // percentages
  assert.deepEqual(range("train[:10%]", 15), [0, 2]);
  assert.deepEqual(range("train[:10%]", 25), [0, 2]);
  assert.deepEqual(range("train[:10%]", 5), [0, 0]);
  assert.deepEqual(range("train[-5%:]", 10), [0, 10]); // -5% of 10 rounds to 0: the whole split
  assert.deepEqual(range("train[-5%:]", 30), [28, 30]);
  assert.deepEqual(range("train[-5%:]", 50), [48, 50]);
  assert.deepEqual(range("train[-5%:]", 70), [66, 70]);
  assert.deepEqual(range("train[10%:20%]", 25), [2, 5]); // 2.5 → 2, 5
  assert.deepEqual(range("train[10%:20%]", 15), [2, 3]); // 1.5 → 2, 3
  assert.deepEqual(range("train[10%:20%]", 100), [10, 20]);
  assert.deepEqual(range("train[:-10%]", 25), [0, 23]); // -2.5 → -2
  assert.deepEqual(range("train[:100%]", 7), [0, 7]);
  assert.deepEqual(range("train[-100%:]", 7), [0, 7]);
  assert.deepEqual(range("train[10%:20]", 100), [10, 20]); // both percentages
  // pct1_dropremainder: b · ⌊n/100⌋, refused below 100 rows
  assert.deepEqual(range("train[:10%](pct1_dropremainder)", 199), [0, 10]);
  assert.deepEqual(range("train[:10%](pct1_dropremainder)", 250), [0, 20]);
  assert.deepEqual(range("train[-5%:](pct1_dropremainder)", 250), [240, 250]);
  assert.deepEqual(range("train[:100%](pct1_dropremainder)", 250), [0, 200]);
  assert.throws(
    () => range("train[:10%](pct1_dropremainder)", 99),
    /split "train\[:10%\]\(pct1_dropremainder\)": pct1_dropremainder rounding needs at least 100 rows, and train has 99/,
  );
});

const rows = (tag: string, n: number): Row[] =>
  Array.from({ length: n }, (_, i) => ({ prompt: `${tag}${i} `, chosen: "y", rejected: "n" }));
const jsonl = (rs: readonly Row[]) => rs.map((r) => JSON.stringify(r)).join("\n") + "\n";
const prompts = async (path: string, split: string) =>
  (await (await loadDataset(path, { split })).toArray()).map((r) => r.prompt);
const tags = (tag: string, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${tag}${from + i} `);

Deno.test("loadDataset reads slices of a folder's splits, across shard boundaries, and concatenations", async () => {
  await withTemp(async (dir) => {
    // train: 25 rows in three Parquet shards (10, 10, 5 rows; the second with row groups of 3); test: 8 rows
    const train = rows("tr", 25);
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeFile(`${dir}/data/train-00000-of-00003.parquet`, parquetBytes(train.slice(0, 10)));
    await Deno.writeFile(`${dir}/data/train-00001-of-00003.parquet`, parquetBytes(train.slice(10, 20), 3));
    await Deno.writeFile(`${dir}/data/train-00002-of-00003.parquet`, parquetBytes(train.slice(20)));
    await Deno.writeFile(`${dir}/data/test-00000-of-00001.parquet`, parquetBytes(rows("te", 8)));
    assert.deepEqual(await prompts(dir, "train[8:13]"), tags("tr", 8, 13));
    assert.deepEqual(await prompts(dir, "train[:10%]"), tags("tr", 0, 2)); // 2.5 → 2
    assert.deepEqual(await prompts(dir, "train[-5%:]"), tags("tr", 24, 25)); // -1.25 → -1
    assert.deepEqual(await prompts(dir, "train[10%:20%]"), tags("tr", 2, 5));
    assert.deepEqual(await prompts(dir, "train[-7:-2]"), tags("tr", 18, 23));
    assert.deepEqual(await prompts(dir, "train[20:]"), tags("tr", 20, 25));
    assert.deepEqual(await prompts(dir, "train[:1000]"), tags("tr", 0, 25));
    assert.deepEqual(await prompts(dir, "train+test"), [...tags("tr", 0, 25), ...tags("te", 0, 8)]);
    assert.deepEqual(
      await prompts(dir, "test[-2:] + train[:3]"),
      [...tags("te", 6, 8), ...tags("tr", 0, 3)],
    );
    // an empty part is no error when another has rows
    assert.deepEqual(await prompts(dir, "train[:0]+test[:1]"), ["te0 "]);
    // rows numbered through the result; each still says where it came from
    const ds = await loadDataset(dir, { split: "train[9:11]+test[:1]" });
    const located = [];
    for await (const r of ds) located.push(r);
    assert.deepEqual(located.map((r) => r.index), [0, 1, 2]);
    assert.match(located[0].where, /train-00000-of-00003\.parquet row 9$/);
    assert.match(located[1].where, /train-00001-of-00003\.parquet row 0$/);
    assert.match(located[2].where, /test-00000-of-00001\.parquet row 0$/);
    assert.equal(ds.name, `${dir} [train[9:11]+test[:1]]`);
    // iterable again, and stopping early leaves nothing open
    assert.equal(await ds.count(), 3);
    for await (const _ of ds) break;
    // nothing selected at all: an error naming the spec and the sizes
    await assert.rejects(
      loadDataset(dir, { split: "train[:1%]" }),
      (e: unknown) =>
        e instanceof DatasetError &&
        e.message.includes(`split "train[:1%]" selects no rows (train has 25 rows)`),
    );
    await assert.rejects(
      loadDataset(dir, { split: "train[30:]+test[9:]" }),
      /train has 25 rows, test has 8 rows/,
    );
    // a part naming a split there is not
    await assert.rejects(loadDataset(dir, { split: "train+validation" }), /no files for split "validation"/);
    await assert.rejects(loadDataset(dir, { split: "train[:x]" }), /split "train\[:x\]": .* is not a split/);
  });
});

Deno.test("slices of a single file (the train split) and of save_to_disk splits", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/prefs.jsonl`, jsonl(rows("r", 10)));
    const file = `${dir}/prefs.jsonl`;
    assert.deepEqual(await prompts(file, "train[:30%]"), tags("r", 0, 3));
    assert.deepEqual(await prompts(file, "train[90%:]"), tags("r", 9, 10));
    assert.deepEqual(await prompts(file, "train[-5%:]"), tags("r", 0, 10));
    assert.equal((await loadDataset(file, { split: "train[:3]" })).name, `${file} [train[:3]]`);
    assert.equal((await loadDataset(file)).name, file);
    // a single file has the train split only
    await assert.rejects(
      loadDataset(file, { split: "test" }),
      (e: unknown) =>
        e instanceof DatasetError &&
        /prefs\.jsonl is a single file, which is the train split only \(asked for split "test"\).*train\[90%:\]/
          .test(e.message),
    );
    // save_to_disk: a DatasetDict, split by split, the rows counted from the Arrow batches
    const saved = `${dir}/saved`;
    await Deno.mkdir(`${saved}/train`, { recursive: true });
    await Deno.mkdir(`${saved}/test`);
    await Deno.writeTextFile(`${saved}/dataset_dict.json`, JSON.stringify({ splits: ["train", "test"] }));
    for (const [split, rs] of [["train", rows("s", 20)], ["test", rows("t", 4)]] as const) {
      await Deno.writeFile(`${saved}/${split}/data-00000-of-00002.arrow`, arrowBytes(rs.slice(0, 10)));
      await Deno.writeFile(`${saved}/${split}/data-00001-of-00002.arrow`, arrowBytes(rs.slice(10)));
      await Deno.writeTextFile(
        `${saved}/${split}/state.json`,
        JSON.stringify({
          _data_files: [{ filename: "data-00000-of-00002.arrow" }, { filename: "data-00001-of-00002.arrow" }],
        }),
      );
    }
    assert.deepEqual(await prompts(saved, "train[-15%:]"), tags("s", 17, 20));
    assert.deepEqual(await prompts(saved, "train[8:12]+test[50%:]"), [
      ...tags("s", 8, 12),
      ...tags("t", 2, 4),
    ]);
    await assert.rejects(loadDataset(saved, { split: "train+dev" }), /no split "dev" in dataset_dict\.json/);
    // one split's folder is the train split only
    await assert.rejects(
      loadDataset(`${saved}/test`, { split: "test" }),
      /a save_to_disk folder of one split \(state\.json, no dataset_dict\.json\) is the train split only/,
    );
    assert.deepEqual(await prompts(`${saved}/test`, "train[:1]"), ["t0 "]);
  });
});
