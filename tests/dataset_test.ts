import assert from "node:assert/strict";
import { parquetWriteBuffer } from "hyparquet-writer";
import { Dataset, loadDataset } from "../src/data/dataset.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";

const rows = [
  { prompt: "Q: 1+1? ", chosen: "2", rejected: "3", extra: 1 },
  { prompt: "Q: 2+2? ", chosen: "4", rejected: "5", extra: 2 },
  { prompt: "Q: café ☕? ", chosen: "oui", rejected: "non", extra: 3 },
];

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function parquet(rs: typeof rows, rowGroupSize?: number): Uint8Array {
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "prompt", data: rs.map((r) => r.prompt), type: "STRING" },
      { name: "chosen", data: rs.map((r) => r.chosen), type: "STRING" },
      { name: "rejected", data: rs.map((r) => r.rejected), type: "STRING" },
      { name: "extra", data: rs.map((r) => r.extra), type: "INT32" },
    ],
    ...(rowGroupSize ? { rowGroupSize } : {}),
  });
  return new Uint8Array(buf);
}

Deno.test("JSON, JSONL and Parquet files give the same rows, extra columns kept", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.json`, JSON.stringify(rows));
    await Deno.writeTextFile(`${dir}/a.jsonl`, rows.map((r) => JSON.stringify(r)).join("\r\n") + "\n\n");
    await Deno.writeFile(`${dir}/a.parquet`, parquet(rows, 2));
    for (const f of ["a.json", "a.jsonl", "a.parquet"]) {
      const ds = await loadDataset(`${dir}/${f}`);
      assert.deepEqual(await ds.toArray(), rows, f);
      assert.equal(await ds.count(), 3);
      // iterable more than once
      assert.equal(await ds.count(), 3);
    }
  });
});

Deno.test("a Hugging Face datasets folder: splits from Parquet shards", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeFile(`${dir}/data/train-00000-of-00002.parquet`, parquet(rows.slice(0, 2)));
    await Deno.writeFile(`${dir}/data/train-00001-of-00002.parquet`, parquet(rows.slice(2)));
    await Deno.writeFile(`${dir}/data/test-00000-of-00001.parquet`, parquet(rows.slice(1, 2)));
    const train = await loadDataset(dir, { split: "train" });
    const located = [];
    for await (const r of train) located.push(r);
    assert.deepEqual(located.map((r) => r.row), rows);
    assert.deepEqual(located.map((r) => r.index), [0, 1, 2]);
    assert.match(located[2].where, /train-00001-of-00002\.parquet row 0/);
    assert.deepEqual(await (await loadDataset(dir, { split: "test" })).toArray(), [rows[1]]);
    await assert.rejects(() => loadDataset(dir, { split: "validation" }), /no files for split "validation"/);
  });
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/test`);
    await Deno.writeTextFile(`${dir}/test/part.jsonl`, JSON.stringify(rows[0]) + "\n");
    assert.deepEqual(await (await loadDataset(dir, { split: "test" })).toArray(), [rows[0]]);
  });
});

Deno.test("JSONL streams: a large file is read line by line", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/big.jsonl`;
    const f = await Deno.open(path, { write: true, create: true });
    const line = new TextEncoder().encode(
      JSON.stringify({ prompt: "p".repeat(900), chosen: "c", rejected: "r" }) + "\n",
    );
    for (let i = 0; i < 20000; i++) await f.write(line); // ~18 MB
    f.close();
    let n = 0;
    for await (const r of await loadDataset(path)) {
      if (n === 0) assert.equal((r.row.prompt as string).length, 900);
      n++;
    }
    assert.equal(n, 20000);
  });
});

Deno.test("bad files name the file and line", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.jsonl`, `${JSON.stringify(rows[0])}\n{"prompt": oops}\n`);
    const ds = await loadDataset(`${dir}/bad.jsonl`);
    await assert.rejects(
      () => ds.toArray(),
      (e: unknown) => e instanceof DatasetError && /bad\.jsonl line 2: not valid JSON/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/arr.jsonl`, `[1, 2]\n`);
    await assert.rejects(
      async () => await (await loadDataset(`${dir}/arr.jsonl`)).toArray(),
      /line 1: a row must be a JSON object/,
    );
    await Deno.writeTextFile(`${dir}/obj.json`, `{"a": 1}`);
    await assert.rejects(
      async () => await (await loadDataset(`${dir}/obj.json`)).toArray(),
      /must be an array/,
    );
    await Deno.writeTextFile(`${dir}/x.csv`, "a,b");
    await assert.rejects(() => loadDataset(`${dir}/x.csv`), /unknown dataset format/);
    await Deno.writeTextFile(`${dir}/broken.parquet`, "not parquet at all");
    await assert.rejects(
      async () => await (await loadDataset(`${dir}/broken.parquet`)).toArray(),
      /not a readable Parquet file/,
    );
    await assert.rejects(() => loadDataset(`${dir}/missing.jsonl`), /no such file/);
  });
  assert.deepEqual(await Dataset.fromRows(rows).toArray(), rows);
});
