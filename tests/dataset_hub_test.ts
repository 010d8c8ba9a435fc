/**
 * Datasets as the hub publishes them: which files hold which split (the `datasets` library's rules), hub ids
 * resolved in a Hugging Face cache built in a temporary folder, subsets (README.md configs, or folders; TRL's
 * dataset_config), data_dir and data_files, and the errors when something is not there.
 */
import assert from "node:assert/strict";
import { filesOf, inferSplits } from "../src/data/data_files.ts";
import { loadDataset } from "../src/data/dataset.ts";
import { globToRegExp } from "../src/data/glob.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";
import { gzip, parquetBytes, withTemp, writeCachedDataset } from "./dataset_layouts.ts";

/** The files of each split `datasets` would find among `files`. */
function splits(files: string[]): Record<string, string[]> {
  const sorted = [...files].sort();
  return Object.fromEntries([...inferSplits(sorted)].map(([s, p]) => [s, filesOf(p, sorted)]));
}

Deno.test("globs: * within a segment, ** across folders, [classes] and [!negations]", () => {
  const t = (p: string, s: string) => globToRegExp(p).test(s);
  assert.ok(t("**/train[-._ 0-9]*", "train.jsonl") && t("**/train[-._ 0-9]*", "a/b/train-0.parquet"));
  assert.ok(!t("**/train[-._ 0-9]*", "trainer.jsonl") && !t("data/*", "data/x/y.parquet"));
  assert.ok(
    t("**/test/**", "test/x.jsonl") && t("**/test/**", "a/test/b/x.jsonl") && !t("**/test/**", "atest/x"),
  );
  assert.ok(t("[!a]b?", "cbd") && !t("[!a]b?", "abd") && t("x[]]y", "x]y") && t("a.b(c)+", "a.b(c)+"));
  assert.ok(t("**", "a/b/c") && !t("a?c", "a/c"));
});

Deno.test("splits by datasets' rules: shards, folder names, file names, else all train", () => {
  // 1. sharded files name any split; train, validation, test first, then the rest sorted
  assert.deepEqual(
    splits([
      "data/train_prefs-00000-of-00001.parquet",
      "data/test_gen-00000-of-00001.parquet",
      "data/test-00000-of-00001.parquet",
      "README.md",
    ]),
    {
      test: ["data/test-00000-of-00001.parquet"],
      test_gen: ["data/test_gen-00000-of-00001.parquet"],
      train_prefs: ["data/train_prefs-00000-of-00001.parquet"],
    },
  );
  // 2. a folder named for a split (or with the keyword as a word of its name), any depth; dev is validation
  assert.deepEqual(
    splits(["train/a.jsonl", "train/b/c.jsonl", "dev/x.jsonl", "x-test/y.jsonl", "other/z.jsonl"]),
    {
      train: ["train/a.jsonl", "train/b/c.jsonl"],
      validation: ["dev/x.jsonl"],
      test: ["x-test/y.jsonl"],
    },
  );
  // 3. a file name starting with the keyword (hh-rlhf: every subset's train.jsonl.gz is train), or holding it
  assert.deepEqual(
    splits([
      "harmless-base/train.jsonl.gz",
      "harmless-base/test.jsonl.gz",
      "helpful-base/train.jsonl.gz",
      "red-team-attempts/red_team_attempts.jsonl.gz",
      "my_eval.json",
    ]),
    {
      train: ["harmless-base/train.jsonl.gz", "helpful-base/train.jsonl.gz"],
      test: ["harmless-base/test.jsonl.gz", "my_eval.json"],
    },
  );
  // 4. nothing names a split: every file is train, except hidden ones, __ folders and datasets' metadata
  assert.deepEqual(
    splits(["prefs.jsonl", "trainer.jsonl", ".cache/x.jsonl", "__pycache__/y.jsonl", "dataset_info.json"]),
    { train: ["prefs.jsonl", "trainer.jsonl"] },
  );
});

const ROWS = [
  { prompt: "a ", chosen: "b", rejected: "c" },
  { prompt: "d ", chosen: "e", rejected: "f" },
];
const jsonl = (rows: readonly object[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function rowsOf(path: string, opts: Parameters<typeof loadDataset>[1] = {}) {
  const ds = await loadDataset(path, opts);
  return { name: ds.name, rows: await ds.toArray() };
}

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DatasetError, String(e));
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

Deno.test("a hub id is read from the cache's snapshot of refs/main, or of a commit; never downloaded", async () => {
  await withTemp(async (dir) => {
    const cache = `${dir}/hub`;
    const snap = await writeCachedDataset(cache, "org/prefs", {
      "data/train-00000-of-00001.parquet": parquetBytes(ROWS),
      "data/test-00000-of-00001.parquet": parquetBytes(ROWS.slice(1)),
    }, "c0ffee");
    const train = await rowsOf("org/prefs", { cacheDir: cache });
    assert.equal(train.name, `${snap} [train]`);
    assert.deepEqual(train.rows, ROWS);
    assert.deepEqual((await rowsOf("org/prefs", { cacheDir: cache, split: "test" })).rows, ROWS.slice(1));
    // a revision that is a commit: its snapshot, without refs
    assert.deepEqual((await rowsOf("org/prefs", { cacheDir: cache, revision: "c0ffee" })).rows, ROWS);
    await rejectsWith(
      loadDataset("org/prefs", { cacheDir: cache, revision: "v2" }),
      /org\/prefs is neither a local file or folder nor a dataset in the Hugging Face cache/,
      new RegExp(`looked in ${cache}: no .*refs/v2 and no snapshot v2`),
    );
    // refs/main names a snapshot that is gone
    await Deno.remove(snap, { recursive: true });
    await rejectsWith(
      loadDataset("org/prefs", { cacheDir: cache }),
      /refs\/main names c0ffee, but .* is missing/,
    );
    // nothing cached: where it looked, that webdpo does not download, and how to fetch it
    await rejectsWith(
      loadDataset("Anthropic/hh-rlhf", { cacheDir: cache }),
      new RegExp(`looked in ${cache}: no ${cache}/datasets--Anthropic--hh-rlhf\\)`),
      /webdpo does not download datasets/,
      /huggingface-cli download --repo-type dataset Anthropic\/hh-rlhf/,
    );
    // a path that is not an id: no such file
    await rejectsWith(loadDataset(`${dir}/absent.jsonl`), /absent\.jsonl: no such file or folder/);
  });
});

Deno.test("hh-rlhf's layout: every subset's train files, or one subset with data_dir", async () => {
  await withTemp(async (dir) => {
    const cache = `${dir}/hub`;
    const sub = (
      name: string,
    ) => [{ chosen: `\n\nHuman: ${name}\n\nAssistant: a`, rejected: `\n\nHuman: ${name}\n\nAssistant: b` }];
    const snap = await writeCachedDataset(cache, "Anthropic/hh-rlhf", {
      "README.md": "---\nlicense: mit\n---\n# hh\n",
      "harmless-base/train.jsonl.gz": await gzip(jsonl(sub("harmless"))),
      "harmless-base/test.jsonl.gz": await gzip(jsonl(sub("harmless test"))),
      "helpful-base/train.jsonl.gz": await gzip(jsonl(sub("helpful"))),
      "red-team-attempts/red_team_attempts.jsonl.gz": await gzip(jsonl(sub("red team"))),
    });
    // as load_dataset("Anthropic/hh-rlhf"): the train files of every subset (red-team-attempts names no split)
    const all = await rowsOf("Anthropic/hh-rlhf", { cacheDir: cache });
    assert.equal(all.name, `${snap} [train]`);
    assert.deepEqual(all.rows, [...sub("harmless"), ...sub("helpful")]);
    // as load_dataset("Anthropic/hh-rlhf", data_dir="harmless-base")
    const harmless = await loadDataset("Anthropic/hh-rlhf", { cacheDir: cache, dataDir: "harmless-base" });
    assert.equal(harmless.name, `${snap}/harmless-base [train]`);
    assert.deepEqual(await harmless.toArray(), sub("harmless"));
    const test = await rowsOf("Anthropic/hh-rlhf", {
      cacheDir: cache,
      dataDir: "harmless-base/",
      split: "test",
    });
    assert.deepEqual(test.rows, sub("harmless test"));
    await rejectsWith(
      loadDataset("Anthropic/hh-rlhf", { cacheDir: cache, dataDir: "/etc" }),
      /data_dir \/etc must be a folder inside/,
    );
    await rejectsWith(
      loadDataset("Anthropic/hh-rlhf", { cacheDir: cache, dataDir: "harmless" }),
      /hh-rlhf\/snapshots\/[0-9a-f]+\/harmless: no such folder \(data_dir\)/,
    );
    await rejectsWith(
      loadDataset("Anthropic/hh-rlhf", { cacheDir: cache, dataDir: "harmless-base", split: "validation" }),
      /harmless-base: no files for split "validation" \(its splits: train, test;/,
    );
  });
});

Deno.test("subsets: README.md configs (the default one, or dataset_config), else a folder of that name", async () => {
  await withTemp(async (dir) => {
    const write = async (path: string, text: string | Uint8Array) => {
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      if (typeof text === "string") await Deno.writeTextFile(path, text);
      else await Deno.writeFile(path, text);
    };
    const row = (tag: string) => [{ prompt: `${tag} `, chosen: "y", rejected: "n" }];
    // a card with two configs, one marked default; one by data_dir, one by data_files
    const ds = `${dir}/cards`;
    await write(
      `${ds}/README.md`,
      "---\npretty_name: x\nconfigs:\n- config_name: small\n  data_dir: small\n" +
        "- config_name: big\n  default: true\n  data_files:\n  - split: train\n    path: big/part-*.jsonl\n" +
        "  - split: eval\n    path: [big/eval.jsonl]\n---\n\n# card\n",
    );
    await write(`${ds}/small/train.jsonl`, jsonl(row("small")));
    await write(`${ds}/small/test.jsonl`, jsonl(row("small test")));
    await write(`${ds}/big/part-0.jsonl`, jsonl(row("big 0")));
    await write(`${ds}/big/part-1.jsonl`, jsonl(row("big 1")));
    await write(`${ds}/big/eval.jsonl`, jsonl(row("big eval")));
    assert.deepEqual((await rowsOf(ds)).rows, [...row("big 0"), ...row("big 1")]);
    assert.deepEqual((await rowsOf(ds, { split: "eval" })).rows, row("big eval"));
    const small = await rowsOf(ds, { name: "small", split: "test" });
    assert.deepEqual(small.rows, row("small test"));
    assert.equal(small.name, `${ds}/small [small/test]`);
    await rejectsWith(
      loadDataset(ds, { name: "medium" }),
      /README\.md has no subset "medium" \(dataset_config\); its subsets: small, big/,
    );
    await rejectsWith(
      loadDataset(ds, { split: "test" }),
      /no files for split "test" \(its splits: train, eval;/,
    );
    // data_dir reads a folder whatever the card says (as load_dataset's data_dir does)
    assert.deepEqual((await rowsOf(ds, { dataDir: "small" })).rows, row("small"));
    // no default among several: dataset_config must pick one
    await write(
      `${ds}/README.md`,
      "---\nconfigs:\n- config_name: small\n  data_dir: small\n- config_name: big\n  data_dir: big\n---\n",
    );
    await rejectsWith(
      loadDataset(ds),
      /declares 2 subsets and none is the default: pick one with dataset_config \(small, big\)/,
    );
    await write(
      `${ds}/README.md`,
      "---\nconfigs:\n- config_name: a\n  default: true\n- config_name: default\n---\n",
    );
    await rejectsWith(loadDataset(ds), /marks several subsets as the default: a, default/);
    await write(`${ds}/README.md`, "---\nconfigs:\n- config_name: a\n  data_files: {train: 5}\n---\n");
    await rejectsWith(loadDataset(ds), /README\.md: configs\[0\] \(a\): "data_files" must be a pattern/);
    // no configs in the card: the subset is a folder
    await write(`${ds}/README.md`, "# no front matter\n");
    assert.deepEqual((await rowsOf(ds, { name: "small", split: "test" })).rows, row("small test"));
    await rejectsWith(
      loadDataset(ds, { name: "medium" }),
      /has no subset "medium" \(dataset_config\): no README\.md declares configs, and there is no folder medium\/ \(folders: big, small\)/,
    );
    // a single file has no subsets
    await rejectsWith(
      loadDataset(`${ds}/big/eval.jsonl`, { name: "x", dataDir: "y" }),
      /eval\.jsonl is a single file, so dataset_config and data_dir cannot apply/,
    );
  });
});

Deno.test("data_files: a pattern, a list, a mapping by split or {split, path} entries; named files must exist", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/d/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/d/a.jsonl`, jsonl(ROWS.slice(0, 1)));
    await Deno.writeTextFile(`${dir}/d/sub/b.jsonl`, jsonl(ROWS.slice(1)));
    await Deno.writeFile(`${dir}/d/sub/c.parquet`, parquetBytes(ROWS));
    const d = `${dir}/d`;
    assert.deepEqual((await rowsOf(d, { dataFiles: "**/*.jsonl" })).rows, ROWS);
    assert.deepEqual((await rowsOf(d, { dataFiles: ["sub/b.jsonl", "a.jsonl"] })).rows, [ROWS[1], ROWS[0]]);
    assert.deepEqual((await rowsOf(d, { dataFiles: { test: "sub/*.parquet" }, split: "test" })).rows, ROWS);
    assert.deepEqual(
      (await rowsOf(d, { dataFiles: [{ split: "dev", path: "a.jsonl" }], split: "dev" })).rows,
      ROWS.slice(0, 1),
    );
    await rejectsWith(
      loadDataset(d, { dataFiles: "nope.jsonl" }),
      /d\/nope\.jsonl: no such file \(named by data_files/,
    );
    await rejectsWith(loadDataset(d, { dataFiles: 3 }), /data_files must be a pattern, a list of patterns/);
    await rejectsWith(loadDataset(d, { dataFiles: "*.csv" }), /split "train" has no file webdpo reads/);
  });
});
