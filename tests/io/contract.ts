/**
 * The behaviour every `Files` implementation promises, as one function. It is self-contained (its checks are
 * defined inside it, nothing imported), so a browser test can send its source into a page and run it there on
 * the real Origin Private File System (tests/browser/io_test.ts), as tests/io_seam_test.ts runs it under Deno.
 */
import type { Files } from "../../src/io/types.ts";

/** Runs the contract on folder `dir` of `fs` (missing or empty at the start); throws naming the first failure. */
export async function fileContract(fs: Files, dir: string): Promise<void> {
  const fail = (what: string): never => {
    throw new Error(`file contract: ${what}`);
  };
  const same = (got: unknown, want: unknown, what: string) => {
    const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
    if (g !== w) fail(`${what}: got ${g}, want ${w}`);
  };
  const rejects = async (p: Promise<unknown>, test: (e: unknown) => boolean, what: string) => {
    try {
      await p;
    } catch (e) {
      if (!test(e)) fail(`${what}: wrong error ${e instanceof Error ? `${e.name}: ${e.message}` : e}`);
      return;
    }
    fail(`${what}: did not fail`);
  };
  const notFound = (e: unknown) => e instanceof Error && e.name === "NotFound";
  const bytesOf = (u: Uint8Array) => Array.from(u);

  same(await fs.stat(`${dir}/none.txt`), null, "stat of a missing file");
  await rejects(fs.readText(`${dir}/none.txt`), notFound, "reading a missing file");
  await rejects(fs.open(`${dir}/none.txt`), notFound, "opening a missing file");

  await fs.mkdir(`${dir}/a/b`);
  await fs.mkdir(`${dir}/a/b`); // an existing folder is fine
  const folder = await fs.stat(`${dir}/a/b`);
  same([folder?.isFile, folder?.isDirectory], [false, true], "stat of a folder");

  await fs.writeText(`${dir}/a/x.json`, '{"v": 1}\n');
  await fs.writeText(`${dir}/a/x.json`, '{"v": 2}\n'); // replaced
  same(await fs.readText(`${dir}/a/x.json`), '{"v": 2}\n', "a replaced file");
  same(
    (await fs.list(`${dir}/a`)).map((e) => [e.name, e.isFile, e.isDirectory]).sort(),
    [["b", false, true], ["x.json", true, false]],
    "the folder after an atomic write (no temporary file left)",
  );
  const st = await fs.stat(`${dir}/a/x.json`);
  same([st?.isFile, st?.size], [true, 9], "stat of a file");

  await fs.appendText(`${dir}/log.jsonl`, "1\n");
  await fs.appendText(`${dir}/log.jsonl`, "2\n");
  same(await fs.readText(`${dir}/log.jsonl`), "1\n2\n", "appended lines");

  // streamed writes, range reads, streamed reads
  const w = await fs.create(`${dir}/big.bin`);
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 251);
  await w.write(bytes.subarray(0, 12_345));
  await w.write(bytes.subarray(12_345));
  await w.close();
  const f = await fs.open(`${dir}/big.bin`);
  same(f.size, 70_000, "the size of an open file");
  same(bytesOf(await f.read(65_000, 5_000)), bytesOf(bytes.subarray(65_000)), "a range read at the end");
  same(bytesOf(await f.read(3, 4)), bytesOf(bytes.subarray(3, 7)), "a range read");
  await rejects(f.read(69_999, 2), (e) => e instanceof RangeError, "a range read past the end");
  await f.close();
  let streamed = 0;
  const reader = (await fs.stream(`${dir}/big.bin`)).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) streamed += r.value.length;
  same(streamed, 70_000, "bytes streamed");
  same(bytesOf(await fs.readBytes(`${dir}/big.bin`)), bytesOf(bytes), "the whole file");

  // an aborted write leaves the file as it was (the browser) or as far as it got (Deno): never a longer file
  const aborted = await fs.create(`${dir}/aborted.bin`);
  await aborted.write(new Uint8Array(10));
  await aborted.abort();
  const ab = await fs.stat(`${dir}/aborted.bin`);
  if (ab && ab.size > 10) fail(`an aborted write left ${ab.size} bytes`);

  // rename: a folder with its files; a file replacing a file
  await fs.writeText(`${dir}/a/b/inner.txt`, "inner");
  await fs.rename(`${dir}/a`, `${dir}/moved`);
  same(await fs.stat(`${dir}/a`), null, "the old name after a folder rename");
  same(await fs.readText(`${dir}/moved/b/inner.txt`), "inner", "a file of a renamed folder");
  await fs.writeText(`${dir}/old.txt`, "old");
  await fs.rename(`${dir}/log.jsonl`, `${dir}/old.txt`);
  same(await fs.readText(`${dir}/old.txt`), "1\n2\n", "a file renamed onto another");

  await fs.sync(`${dir}/old.txt`, false);
  await fs.sync(`${dir}/moved`, true);
  await fs.remove(`${dir}/moved`);
  await fs.remove(`${dir}/aborted.bin`).catch(() => {});
  same(await fs.stat(`${dir}/moved`), null, "a removed folder");
  same(await fs.realPath(`${dir}/./old.txt`), await fs.realPath(`${dir}/old.txt`), "realPath of ./");
  same((await fs.list(dir)).map((e) => e.name).sort(), ["big.bin", "old.txt"], "what is left");
}
