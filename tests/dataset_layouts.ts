/**
 * Test helper: the same preference rows written in every file layout webdpo reads — JSON, JSONL (both also
 * gzipped), Parquet, a `datasets` folder of Parquet shards, a `save_to_disk` folder (Arrow IPC streams), and hub
 * dataset ids in a Hugging Face cache built in a temporary folder (snapshots of links into blobs/, refs/main) —
 * with where each row is expected to be reported.
 */
import { Field, Float64, List, Struct, Table, tableToIPC, Utf8, vectorFromArray } from "apache-arrow";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { LoadDatasetOptions, Row } from "../src/data/dataset.ts";

/** Rows as one file layout holds them. */
export interface Written {
  /** What to pass to loadDataset. */
  path: string;
  opts: LoadDatasetOptions;
  /** Where row i is reported ("file line N" / "file row N"). */
  where(i: number): string;
}

type Kind = "string" | "number" | "messages";

/** The columns of `rows` (first row's order) with the kind of their first non-null value. */
function columnsOf(rows: readonly Row[]): [string, Kind][] {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return names.map((n) => {
    const v = rows.map((r) => r[n]).find((x) => x !== null && x !== undefined);
    return [n, Array.isArray(v) ? "messages" : typeof v === "number" ? "number" : "string"];
  });
}

/** A Parquet file as pyarrow writes these columns: strings, doubles, list<struct<content, role>>. */
export function parquetBytes(rows: readonly Row[], rowGroupSize?: number): Uint8Array {
  const cols = columnsOf(rows);
  const schema: Record<string, unknown>[] = [{ name: "root", num_children: cols.length }];
  for (const [name, kind] of cols) {
    if (kind === "messages") {
      schema.push(
        { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", repetition_type: "OPTIONAL", num_children: 2 },
        { name: "content", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
        { name: "role", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
      );
    } else if (kind === "number") {
      schema.push({ name, type: "DOUBLE", repetition_type: "OPTIONAL" });
    } else {
      schema.push({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });
    }
  }
  const buf = parquetWriteBuffer({
    columnData: cols.map(([name]) => ({ name, data: rows.map((r) => r[name] ?? null) })),
    schema: schema as never,
    ...(rowGroupSize ? { rowGroupSize } : {}),
  });
  return new Uint8Array(buf);
}

/** An Arrow IPC stream of the rows, as `datasets.save_to_disk` writes one. */
export function arrowBytes(rows: readonly Row[]): Uint8Array {
  const messages = new List(
    new Field(
      "item",
      new Struct([new Field("content", new Utf8(), true), new Field("role", new Utf8(), true)]),
      true,
    ),
  );
  const vectors: Record<string, unknown> = {};
  for (const [name, kind] of columnsOf(rows)) {
    const type = kind === "messages" ? messages : kind === "number" ? new Float64() : new Utf8();
    vectors[name] = vectorFromArray(rows.map((r) => r[name] ?? null) as never[], type as never);
  }
  return tableToIPC(new Table(vectors as never), "stream");
}

/** The gzip of `text`. */
export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const jsonl = (rows: readonly Row[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function write(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
}

/**
 * A hub dataset `org/name` in the cache folder `cache`, as huggingface_hub leaves it: the files' bytes in
 * blobs/, `snapshots/<commit>/<path>` relative links to them, `refs/main` naming the commit.
 */
export async function writeCachedDataset(
  cache: string,
  id: string,
  files: Record<string, Uint8Array | string>,
  commit = "5f1c0de0c0ffee0000000000000000000000beef",
): Promise<string> {
  const repo = `${cache}/datasets--${id.replace("/", "--")}`;
  const snapshot = `${repo}/snapshots/${commit}`;
  for (const [rel, data] of Object.entries(files)) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
    const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    await write(`${repo}/blobs/${hash}`, bytes);
    const link = `${snapshot}/${rel}`;
    await Deno.mkdir(link.slice(0, link.lastIndexOf("/")), { recursive: true });
    const up = "../".repeat(rel.split("/").length + 1);
    await Deno.symlink(`${up}blobs/${hash}`, link);
  }
  await write(`${repo}/refs/main`, commit);
  return snapshot;
}

/** Every layout: a name and a writer of `rows` into the folder `dir` (a fresh one per call). */
export const LAYOUTS: readonly [string, (dir: string, rows: readonly Row[]) => Promise<Written>][] = [
  ["json", async (dir, rows) => {
    await write(`${dir}/rows.json`, JSON.stringify(rows));
    return { path: `${dir}/rows.json`, opts: {}, where: (i) => `${dir}/rows.json row ${i}` };
  }],
  ["json.gz", async (dir, rows) => {
    await write(`${dir}/rows.json.gz`, await gzip(JSON.stringify(rows)));
    return { path: `${dir}/rows.json.gz`, opts: {}, where: (i) => `${dir}/rows.json.gz row ${i}` };
  }],
  ["jsonl", async (dir, rows) => {
    await write(`${dir}/rows.jsonl`, jsonl(rows));
    return { path: `${dir}/rows.jsonl`, opts: {}, where: (i) => `${dir}/rows.jsonl line ${i + 1}` };
  }],
  ["jsonl.gz", async (dir, rows) => {
    await write(`${dir}/rows.jsonl.gz`, await gzip(jsonl(rows)));
    return { path: `${dir}/rows.jsonl.gz`, opts: {}, where: (i) => `${dir}/rows.jsonl.gz line ${i + 1}` };
  }],
  ["parquet (row groups of 2)", async (dir, rows) => {
    await write(`${dir}/rows.parquet`, parquetBytes(rows, 2));
    return { path: `${dir}/rows.parquet`, opts: {}, where: (i) => `${dir}/rows.parquet row ${i}` };
  }],
  ["datasets folder (data/train-*.parquet, two shards)", async (dir, rows) => {
    const half = Math.ceil(rows.length / 2);
    const shard = (k: number) => `${dir}/prefs/data/train-0000${k}-of-00002.parquet`;
    await write(shard(0), parquetBytes(rows.slice(0, half)));
    await write(shard(1), parquetBytes(rows.slice(half)));
    await write(`${dir}/prefs/data/test-00000-of-00001.parquet`, parquetBytes(rows.slice(0, 1)));
    await write(`${dir}/prefs/README.md`, "# prefs\n");
    return {
      path: `${dir}/prefs`,
      opts: { split: "train" },
      where: (i) => (i < half ? `${shard(0)} row ${i}` : `${shard(1)} row ${i - half}`),
    };
  }],
  ["save_to_disk folder (Arrow IPC)", async (dir, rows) => {
    const d = `${dir}/saved`;
    await write(`${d}/dataset_dict.json`, JSON.stringify({ splits: ["train", "test"] }));
    for (const [split, part] of [["train", rows], ["test", rows.slice(0, 1)]] as const) {
      await write(`${d}/${split}/data-00000-of-00001.arrow`, arrowBytes(part));
      await write(
        `${d}/${split}/state.json`,
        JSON.stringify({ _data_files: [{ filename: "data-00000-of-00001.arrow" }], _split: split }),
      );
    }
    return { path: d, opts: {}, where: (i) => `${d}/train/data-00000-of-00001.arrow row ${i}` };
  }],
  ["hub id in the cache (data/train-00000-of-00001.parquet)", async (dir, rows) => {
    const snap = await writeCachedDataset(`${dir}/hub`, "org/prefs", {
      "README.md": "---\nlicense: mit\n---\n# prefs\n",
      "data/train-00000-of-00001.parquet": parquetBytes(rows),
      "data/test-00000-of-00001.parquet": parquetBytes(rows.slice(0, 1)),
    });
    return {
      path: "org/prefs",
      opts: { cacheDir: `${dir}/hub` },
      where: (i) => `${snap}/data/train-00000-of-00001.parquet row ${i}`,
    };
  }],
  ["hub id in the cache, data_dir (harmless-base/train.jsonl.gz)", async (dir, rows) => {
    const other = [{
      chosen: "\n\nHuman: other\n\nAssistant: a",
      rejected: "\n\nHuman: other\n\nAssistant: b",
    }];
    const snap = await writeCachedDataset(`${dir}/hub`, "Anthropic/hh-rlhf", {
      "README.md": "---\nlicense: mit\n---\n",
      "harmless-base/train.jsonl.gz": await gzip(jsonl(rows)),
      "harmless-base/test.jsonl.gz": await gzip(jsonl(rows.slice(0, 1))),
      "helpful-base/train.jsonl.gz": await gzip(jsonl(other)),
      "red-team-attempts/red_team_attempts.jsonl.gz": await gzip(jsonl(other)),
    });
    return {
      path: "Anthropic/hh-rlhf",
      opts: { cacheDir: `${dir}/hub`, dataDir: "harmless-base" },
      where: (i) => `${snap}/harmless-base/train.jsonl.gz line ${i + 1}`,
    };
  }],
  ["hub id in the cache, a README.md config (dataset_config)", async (dir, rows) => {
    const card = "---\nconfigs:\n- config_name: default\n  data_files: other/*.jsonl\n" +
      "- config_name: pairs\n  data_files:\n  - split: train\n    path: pairs/train-*.parquet\n" +
      "  - split: test\n    path: pairs/test-*.parquet\n---\n# a dataset with two subsets\n";
    const snap = await writeCachedDataset(`${dir}/hub`, "org/subsets", {
      "README.md": card,
      "other/x.jsonl": jsonl([{ prompt: "x", chosen: "y", rejected: "z" }]),
      "pairs/train-00000-of-00001.parquet": parquetBytes(rows),
      "pairs/test-00000-of-00001.parquet": parquetBytes(rows.slice(0, 1)),
    });
    return {
      path: "org/subsets",
      opts: { cacheDir: `${dir}/hub`, name: "pairs" },
      where: (i) => `${snap}/pairs/train-00000-of-00001.parquet row ${i}`,
    };
  }],
];

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "webdpo_layouts_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
