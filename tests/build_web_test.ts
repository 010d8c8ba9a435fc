/**
 * `deno task build:web`: the bundle builds; no output mentions `Deno.` or imports a Node built-in; the kernels
 * are beside it; and the bundle itself, on its default (browser) platform, loads examples/tiny-chat from a URL,
 * trains four DPO steps and saves the model into a folder handle (in a Deno child process, which has WebGPU).
 */
import assert from "node:assert/strict";
import { buildWeb } from "../scripts/build_web.ts";
import { serve } from "./io/static_server.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function wgslFiles(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) n += await wgslFiles(`${dir}/${e.name}`);
    else if (e.name.endsWith(".wgsl")) n++;
  }
  return n;
}

Deno.test("build:web bundles the library for a browser, and the bundle trains", async () => {
  const outdir = await Deno.makeTempDir({ prefix: "webdpo-web-" });
  const server = serve(`${root}/examples/tiny-chat`, true);
  try {
    const b = await buildWeb(outdir);
    assert.deepEqual(b.warnings, []);
    assert.ok(b.files.includes("webdpo.js") && b.files.includes("tokenize_worker.js"), b.files.join());
    assert.equal(b.kernels, await wgslFiles(`${root}/kernels`));
    assert.ok((await Deno.stat(`${outdir}/kernels/common/grid.wgsl`)).isFile);
    for (const f of b.files.filter((f) => f.endsWith(".js"))) {
      const text = await Deno.readTextFile(`${outdir}/${f}`);
      assert.ok(!text.includes("Deno."), `${f} mentions Deno.`);
      assert.doesNotMatch(text, /(from|import\()\s*["']node:/, `${f} imports a Node built-in`);
    }
    const bundle = await Deno.readTextFile(`${outdir}/webdpo.js`);
    assert.ok(bundle.length > 100_000, "the npm dependencies are bundled in");
    assert.doesNotMatch(bundle, /from\s*["'](@huggingface|hyparquet|apache-arrow|yaml|@noble)/);

    const child = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}/tests/build_web_child.ts`, `${outdir}/webdpo.js`, server.url],
      // the browser platform leaves wgpu's backend alone; here, as the Deno platform would, take Vulkan only
      env: { DENO_WEBGPU_BACKEND: "vulkan" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(child.stderr);
    assert.equal(child.code, 0, stderr);
    const r = JSON.parse(new TextDecoder().decode(child.stdout).trim().split("\n").pop()!);
    assert.equal(r.host, "browser");
    assert.equal(r.losses.length, 4);
    assert.ok(r.losses.every(Number.isFinite), JSON.stringify(r.losses));
    assert.ok(r.logs > 0, "log lines went to the page's sink");
    for (
      const f of ["saved/config.json", "saved/model.safetensors", "saved/tokenizer.json", "run/metrics.jsonl"]
    ) {
      assert.ok(r.files.includes(f), `${f} in ${r.files.join(", ")}`);
    }
    assert.ok(server.requests.some((q) => q.startsWith("GET /model.safetensors bytes=")), "weights by range");
  } finally {
    await server.close();
    await Deno.remove(outdir, { recursive: true });
  }
});
