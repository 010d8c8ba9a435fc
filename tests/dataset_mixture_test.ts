/**
 * The dataset keys of `webdpo train` as TRL 1.x names them — dataset_name with dataset_config and split specs, and
 * the `datasets` mixture (entries with path, name, data_dir, data_files, split, columns, fraction) with
 * test_split_size — from YAML and flags to the datasets the trainer gets; and `webdpo data` reading a hub id from
 * $HF_HUB_CACHE / $HF_HOME.
 */
import assert from "node:assert/strict";
import { buildTrainConfig, ConfigError, loadTrainConfig, trainHelp } from "../src/cli/config_file.ts";
import { loadTrainDatasets } from "../src/cli/train.ts";
import { fractionCounts, loadMixture } from "../src/data/mixture.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";
import { gzip, parquetBytes, withTemp, writeCachedDataset } from "./dataset_layouts.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const quiet = { printWarnings: false };
const BASE = { model_name_or_path: "m", output_dir: "o" };
const rowsOf = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `${tag}${i} `, chosen: "y", rejected: "n", score: i }));
const jsonl = (rows: readonly object[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

/** A folder with an hh-style subset folder and a Parquet dataset beside it. */
async function writeData(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/hh/harmless-base`, { recursive: true });
  await Deno.mkdir(`${dir}/hh/helpful-base`, { recursive: true });
  await Deno.writeFile(`${dir}/hh/harmless-base/train.jsonl.gz`, await gzip(jsonl(rowsOf("harmless", 3))));
  await Deno.writeFile(
    `${dir}/hh/harmless-base/test.jsonl.gz`,
    await gzip(jsonl(rowsOf("harmless test", 1))),
  );
  await Deno.writeFile(`${dir}/hh/helpful-base/train.jsonl.gz`, await gzip(jsonl(rowsOf("helpful", 2))));
  await Deno.mkdir(`${dir}/uf/data`, { recursive: true });
  await Deno.writeFile(`${dir}/uf/data/train-00000-of-00001.parquet`, parquetBytes(rowsOf("uf", 5)));
}

Deno.test("a datasets mixture: entries read in order, columns selected, test_split_size drawn from the seed", async () => {
  await withTemp(async (dir) => {
    await writeData(dir);
    const entries = [
      { path: `${dir}/hh`, data_dir: "harmless-base" },
      { path: `${dir}/uf`, split: "train", columns: ["prompt", "chosen", "rejected"] },
    ];
    const { train, test } = await loadMixture(entries);
    assert.equal(test, null);
    const rows = [];
    for await (const r of train) rows.push(r);
    assert.deepEqual(rows.map((r) => r.row.prompt), [
      "harmless0 ",
      "harmless1 ",
      "harmless2 ",
      "uf0 ",
      "uf1 ",
      "uf2 ",
      "uf3 ",
      "uf4 ",
    ]);
    assert.deepEqual(rows.map((r) => r.index), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(Object.keys(rows[4].row).sort(), ["chosen", "prompt", "rejected"]);
    assert.equal(rows[0].row.score, 0); // no columns: every column kept
    assert.match(rows[4].where, /uf\/data\/train-00000-of-00001\.parquet row 1$/);
    // a share (rounded up, as datasets' train_test_split) or a count; the same seed holds out the same rows
    const split = async (size: number, seed: number) => {
      const m = await loadMixture(entries, { testSplitSize: size, seed });
      const names = async (d: typeof train) => (await d.toArray()).map((r) => r.prompt as string);
      return { train: await names(m.train), test: await names(m.test!), name: m.test!.name };
    };
    const a = await split(0.3, 42);
    assert.equal(a.test.length, 3);
    assert.equal(a.train.length, 5);
    assert.match(a.name, /\[test: 3 of 8 rows\]$/);
    assert.deepEqual([...a.train, ...a.test].sort(), rows.map((r) => r.row.prompt as string).sort());
    assert.deepEqual(await split(0.3, 42), a);
    assert.notDeepEqual((await split(0.3, 7)).test, a.test);
    assert.equal((await split(2, 42)).test.length, 2);
    await assert.rejects(
      loadMixture(entries, { testSplitSize: 8 }),
      /test_split_size 8 does not split .* \(8 rows\)/,
    );
    // a column the entry selects but a row lacks
    await assert.rejects(
      async () =>
        await (await loadMixture([{ path: `${dir}/uf`, columns: ["prompt", "chosn"] }])).train.toArray(),
      (e: unknown) =>
        e instanceof DatasetError && /train-00000-of-00001\.parquet row 0: no "chosn" column/.test(e.message),
    );
  });
});

Deno.test("fraction: each entry's share of the mixture, capped so no entry is oversampled, as TRL's get_dataset", async () => {
  // TRL's own test: 0.75 / 0.25 of two equal entries keeps all of the first and a third of the second
  assert.deepEqual(fractionCounts([0.75, 0.25], [12, 12]), [12, 4]);
  // by hand: weights 1/4, 1/4, 1/2; T = min(400, 400, 10) = 10 → 2.5, 2.5, 5 → 2, 2, 5 (ties to even)
  assert.deepEqual(fractionCounts([1, 1, 2], [100, 100, 5]), [2, 2, 5]);
  // T = 14 → 3.5 → 4
  assert.deepEqual(fractionCounts([1, 1, 2], [100, 100, 7]), [4, 4, 7]);
  // a fraction of 0 keeps nothing and does not bind T; unnormalized fractions are normalized
  assert.deepEqual(fractionCounts([0, 3, 1], [50, 9, 100]), [0, 9, 3]);
  await withTemp(async (dir) => {
    await writeData(dir);
    const names = async (entries: object[]) =>
      (await (await loadMixture(entries as never)).train.toArray()).map((r) => r.prompt);
    // hh harmless-base has 3 rows, uf 5: weights 0.5 / 0.5 → T = min(6, 10) = 6 → 3 and 3
    assert.deepEqual(
      await names([
        { path: `${dir}/hh`, data_dir: "harmless-base", fraction: 0.5 },
        { path: `${dir}/uf`, fraction: 0.5 },
      ]),
      ["harmless0 ", "harmless1 ", "harmless2 ", "uf0 ", "uf1 ", "uf2 "],
    );
    // with a sliced split: uf[1:] has 4 rows; 1 : 3 → T = min(12, 4/0.75 ≈ 5.33) → 1.33 → 1 and 4
    const m = await loadMixture([
      { path: `${dir}/hh`, data_dir: "harmless-base", fraction: 1 },
      { path: `${dir}/uf`, split: "train[1:]", fraction: 3 },
    ]);
    assert.deepEqual((await m.train.toArray()).map((r) => r.prompt), [
      "harmless0 ",
      "uf1 ",
      "uf2 ",
      "uf3 ",
      "uf4 ",
    ]);
    assert.match(m.train.name, /\[first 1 of 3 rows\] \+ .*uf \[train\[1:\]\] \[first 4 of 4 rows\]/);
    // then test_split_size holds out from what the fractions kept
    const held = await loadMixture([
      { path: `${dir}/hh`, data_dir: "harmless-base", fraction: 0.5 },
      { path: `${dir}/uf`, fraction: 0.5 },
    ], { testSplitSize: 2 });
    assert.equal((await held.train.toArray()).length, 4);
    assert.equal((await held.test!.toArray()).length, 2);
    // an entry with rows to give but none in its split: the mixture is empty
    await Deno.writeTextFile(`${dir}/empty.jsonl`, "\n");
    await assert.rejects(
      loadMixture([{ path: `${dir}/uf`, fraction: 1 }, { path: `${dir}/empty.jsonl`, fraction: 1 }]),
      /datasets: the fractions keep no rows \(entries of 5, 0 rows/,
    );
    await assert.rejects(
      loadMixture([{ path: `${dir}/uf`, fraction: 1 }, { path: `${dir}/hh` }]),
      /datasets must give fraction for every entry or for none/,
    );
  });
});

Deno.test("dataset keys: dataset_config and the datasets mixture, checked as TRL 1.x names them", async () => {
  const build = (values: Record<string, unknown>) => buildTrainConfig({ ...BASE, ...values }, quiet);
  const fails = (values: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => build(values), (e: unknown) => e instanceof ConfigError && re.test(e.message));
  const s = build({ dataset_name: "Anthropic/hh-rlhf", dataset_config: "harmless" }).script;
  assert.equal(s.datasetConfig, "harmless");
  assert.equal(s.datasets, null);
  const m = build({
    datasets: [{ path: "Anthropic/hh-rlhf", data_dir: "harmless-base" }],
    test_split_size: 0.1,
  });
  assert.deepEqual(m.script.datasets, [{ path: "Anthropic/hh-rlhf", data_dir: "harmless-base" }]);
  assert.equal(m.script.testSplitSize, 0.1);
  assert.equal(m.script.datasetName, null);
  fails({}, /dataset_name is required \(in the YAML file or as --dataset_name\), or a `datasets` list/);
  fails(
    { dataset_name: "d", datasets: [{ path: "p" }] },
    /datasets and dataset_name both say which data to use/,
  );
  fails({ dataset_name: "d", test_split_size: 0.1 }, /test_split_size splits a `datasets` mixture/);
  fails(
    { datasets: [{ path: "p" }], dataset_train_split: "train_prefs" },
    /dataset_train_split must be train/,
  );
  fails({ datasets: [] }, /datasets must be a non-empty list/);
  fails(
    { datasets: [{ path: "p", data_dri: "x" }] },
    /datasets\[0\] has an unknown key 'data_dri'; did you mean 'data_dir'\?/,
  );
  // fraction (TRL ≥ 1.8): for every entry or none, a share ≥ 0, not all 0
  assert.deepEqual(
    build({ datasets: [{ path: "p", fraction: 0.5 }, { path: "q", fraction: 0 }] }).script.datasets,
    [{ path: "p", fraction: 0.5 }, { path: "q", fraction: 0 }],
  );
  fails(
    { datasets: [{ path: "p", fraction: 0.5 }, { path: "q" }, { path: "r", fraction: 1 }] },
    /datasets must give fraction for every entry or for none \(given for \[0\], \[2\] only\)/,
  );
  fails({ datasets: [{ path: "p", fraction: -1 }] }, /datasets\[0\]\.fraction must be a share ≥ 0/);
  fails({ datasets: [{ path: "p", fraction: "half" }] }, /datasets\[0\]\.fraction must be a share ≥ 0/);
  fails({ datasets: [{ path: "p", fraction: 0 }] }, /datasets have fractions that are all 0/);
  // split specs: an entry's split and the split keys are checked before anything is read
  assert.equal(
    build({ datasets: [{ path: "p", split: "train[:10%]+test" }] }).script.datasets![0].split,
    "train[:10%]+test",
  );
  fails(
    { datasets: [{ path: "p", split: "train[:10%" }] },
    /datasets\[0\]\.split: split "train\[:10%": .* is not a split or a slice of one; a split is NAME/,
  );
  const sliced = build({
    dataset_name: "d",
    dataset_train_split: "train[:90%]",
    dataset_test_split: "train[90%:]",
  });
  assert.deepEqual([sliced.script.datasetTrainSplit, sliced.script.datasetTestSplit], [
    "train[:90%]",
    "train[90%:]",
  ]);
  fails(
    { dataset_name: "d", dataset_train_split: "train[:200%]" },
    /dataset_train_split: split "train\[:200%\]": 200%/,
  );
  fails({ dataset_name: "d", dataset_test_split: "test[a:]" }, /dataset_test_split: split "test\[a:\]"/);
  fails({ datasets: [{ name: "x" }] }, /datasets\[0\]\.path must be a dataset file, folder or hub id/);
  fails({ datasets: [{ path: "p", columns: "prompt" }] }, /datasets\[0\]\.columns must be a non-empty list/);
  fails(
    { datasets: [{ path: "p" }], test_split_size: 1.5 },
    /test_split_size must be a share in \(0, 1\) or a whole number/,
  );
  fails({ dataset_name: "d", streaming: true }, /streaming.*tokenizes them once before training; remove it/);
  fails({ dataset_name: "d", dataset_streaming: true }, /dataset_streaming.*remove it/);
  // YAML lists of mappings, and flags as JSON
  await withTemp(async (dir) => {
    const yaml = `${dir}/mix.yaml`;
    await Deno.writeTextFile(
      yaml,
      "model_name_or_path: m\noutput_dir: o\ndatasets:\n  - path: Anthropic/hh-rlhf\n    data_dir: harmless-base\n" +
        "    split: train\n    columns: [chosen, rejected]\ntest_split_size: '0.05'\n",
    );
    const fromYaml = await loadTrainConfig(yaml, [], quiet);
    assert.deepEqual(fromYaml.script.datasets, [{
      path: "Anthropic/hh-rlhf",
      data_dir: "harmless-base",
      split: "train",
      columns: ["chosen", "rejected"],
    }]);
    assert.equal(fromYaml.script.testSplitSize, 0.05);
    const fromFlags = await loadTrainConfig(undefined, [
      "--model_name_or_path=m",
      "--output_dir=o",
      "--datasets",
      '[{"path": "org/x", "name": "pairs"}]',
    ], quiet);
    assert.deepEqual(fromFlags.script.datasets, [{ path: "org/x", name: "pairs" }]);
    await assert.rejects(
      loadTrainConfig(undefined, ["--model_name_or_path=m", "--output_dir=o", "--datasets", "org/x"], quiet),
      /--datasets expects a JSON list of mappings/,
    );
  });
  const help = trainHelp();
  assert.match(help, /--dataset_config <str> {2}\(default: unset; TRL ≥ 0\.13\)/);
  assert.match(help, /--datasets <list of mappings> {2}\(default: unset; TRL ≥ 0\.22\)/);
  assert.match(help, /--test_split_size <float > 0> {2}\(default: unset; TRL ≥ 0\.22\)/);
  assert.match(
    help,
    /--dataset_name <str> {2}\(default: unset; TRL ≥ 0\.9\)\n.*required unless `datasets` is given/,
  );
});

Deno.test("loadTrainDatasets: dataset_config picks a subset; a mixture's eval split is test_split_size", async () => {
  await withTemp(async (dir) => {
    await writeData(dir);
    const build = (values: Record<string, unknown>) => buildTrainConfig({ ...BASE, ...values }, quiet);
    const sub = await loadTrainDatasets(build({ dataset_name: `${dir}/hh`, dataset_config: "helpful-base" }));
    assert.deepEqual((await sub.train.toArray()).map((r) => r.prompt), ["helpful0 ", "helpful1 "]);
    assert.equal(sub.eval, null);
    const withEval = await loadTrainDatasets(
      build({ dataset_name: `${dir}/hh`, dataset_config: "harmless-base", eval_strategy: "epoch" }),
    );
    assert.deepEqual((await withEval.eval!.toArray()).map((r) => r.prompt), ["harmless test0 "]);
    // split specs in the split keys: a held-out slice of the train split
    const sliced = await loadTrainDatasets(build({
      dataset_name: `${dir}/hh`,
      dataset_config: "harmless-base",
      dataset_train_split: "train[:2]",
      dataset_test_split: "train[-1:]+test",
      eval_strategy: "epoch",
    }));
    assert.deepEqual((await sliced.train.toArray()).map((r) => r.prompt), ["harmless0 ", "harmless1 "]);
    assert.deepEqual((await sliced.eval!.toArray()).map((r) => r.prompt), ["harmless2 ", "harmless test0 "]);
    await assert.rejects(
      loadTrainDatasets(
        build({ dataset_name: `${dir}/hh`, dataset_config: "helpful-base", eval_strategy: "epoch" }),
      ),
      (e: unknown) =>
        e instanceof ConfigError &&
        /needs the 'test' split .*hh\/helpful-base has no files for it \(.*no files for split "test"/.test(
          e.message,
        ),
    );
    const mixture = { datasets: [{ path: `${dir}/uf` }, { path: `${dir}/hh`, data_dir: "harmless-base" }] };
    const mixed = await loadTrainDatasets(build({ ...mixture, test_split_size: 2, eval_strategy: "steps" }));
    assert.equal((await mixed.train.toArray()).length, 6);
    assert.equal((await mixed.eval!.toArray()).length, 2);
    const noEval = await loadTrainDatasets(build({ ...mixture, test_split_size: 2 }));
    assert.equal(noEval.eval, null);
    assert.equal((await noEval.train.toArray()).length, 6);
    await assert.rejects(
      loadTrainDatasets(build({ ...mixture, eval_strategy: "epoch" })),
      /a `datasets` mixture has one only with test_split_size/,
    );
  });
});

async function webdpoData(args: string[], env: Record<string, string>, cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}src/cli/main.ts`, "data", ...args],
    env: { NO_COLOR: "1", ...env },
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
}

Deno.test("webdpo data: a hub id from $HF_HUB_CACHE or $HF_HOME/hub, with --data_dir; a local folder first", async () => {
  await withTemp(async (dir) => {
    const model = `${ROOT}examples/tiny-chat`;
    const rows = (await Deno.readTextFile(`${model}/data/dpo_test.jsonl`)).split("\n").filter(Boolean).slice(
      0,
      4,
    );
    const other = rows.slice(0, 1);
    await writeCachedDataset(`${dir}/home/hub`, "org/chat", {
      "README.md": "# chat prefs\n",
      "harmless-base/train.jsonl.gz": await gzip(rows.join("\n") + "\n"),
      "helpful-base/train.jsonl.gz": await gzip(other.join("\n") + "\n"),
    });
    const env = { HOME: `${dir}/nohome`, HF_HOME: `${dir}/home` };
    const sub = await webdpoData(["org/chat", "--model", model, "--data_dir", "harmless-base"], env);
    assert.equal(sub.code, 0, sub.err);
    assert.match(sub.out, /datasets--org--chat\/snapshots\/[0-9a-f]+\/harmless-base \[train\]/);
    assert.match(sub.out, /4 rows, conversational, explicit prompt/);
    const all = await webdpoData(["org/chat", "--model", model], {
      HOME: `${dir}/nohome`,
      HF_HUB_CACHE: `${dir}/home/hub`,
    });
    assert.equal(all.code, 0, all.err);
    assert.match(all.out, /5 rows, conversational/);
    const viaConfig = await webdpoData(
      ["org/chat", "--model", model, "--dataset_config", "helpful-base"],
      env,
    );
    assert.match(viaConfig.out, /1 rows?, conversational/);
    // nothing cached: exit 1, where it looked, no download
    const absent = await webdpoData(["org/absent", "--model", model], env);
    assert.equal(absent.code, 1);
    assert.match(absent.err, new RegExp(`org/absent is neither .* \\(looked in ${dir}/home/hub: no `));
    assert.match(absent.err, /webdpo does not download datasets/);
    // a local folder named like the id comes first
    await Deno.mkdir(`${dir}/org/chat`, { recursive: true });
    await Deno.writeTextFile(`${dir}/org/chat/train.jsonl`, other.join("\n") + "\n");
    const local = await webdpoData(["org/chat", "--model", model], env, dir);
    assert.equal(local.code, 0, local.err);
    assert.match(local.out, /org\/chat \[train\]/);
    assert.match(local.out, /1 rows?, conversational/);
  });
});
