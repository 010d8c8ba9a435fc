/**
 * The browser's file access in real Chromium: the file contract (tests/io/contract.ts, the one Deno's and the
 * in-memory handle's files pass in tests/io_seam_test.ts) run in a page on its Origin Private File System,
 * through `browserFiles` of the built bundle. Run with `deno task test:browser`.
 */
import assert from "node:assert/strict";
import { buildWeb } from "../../scripts/build_web.ts";
import { fileContract } from "../io/contract.ts";
import { serve } from "../io/static_server.ts";
import { openPage } from "./chromium.ts";

const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("the file contract holds in Chromium on the Origin Private File System", async () => {
  const outdir = await Deno.makeTempDir({ prefix: "webdpo-web-" });
  const server = serve({ "/dist/web/": outdir, "/": root }, true);
  let session: Awaited<ReturnType<typeof openPage>> | null = null;
  try {
    await buildWeb(outdir);
    session = await openPage(`${server.url}examples/tiny-chat/config.json`);
    const result = await session.page.evaluate(async ([contract, bundle]) => {
      const w = await import(bundle);
      const opfs = await w.opfsRoot();
      await opfs.removeEntry("contract", { recursive: true }).catch(() => {});
      const fs = w.browserFiles({ mounts: { "/opfs": opfs } });
      const run = (0, eval)(`(${contract})`);
      try {
        await run(fs, "/opfs/contract");
        const left: string[] = [];
        for await (const [name] of (await opfs.getDirectoryHandle("contract")).entries()) left.push(name);
        return { ok: true, message: left.sort().join() };
      } catch (e) {
        return { ok: false, message: e instanceof Error ? e.message : String(e) };
      }
    }, [fileContract.toString(), `${server.url}dist/web/webdpo.js`]);
    assert.ok(result.ok, `${result.message}\n${session.console.join("\n")}`);
    assert.equal(result.message, "big.bin,old.txt", "the contract ran and left its two files");
  } finally {
    await session?.close();
    await server.close();
    await Deno.remove(outdir, { recursive: true });
  }
});
