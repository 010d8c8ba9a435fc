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
    assert.ok(b.files.includes("browser_demo.js"), "the example page's module");
    let bytes = 0, imports = 0;
    for (const f of b.files.filter((f) => f.endsWith(".js"))) {
      const text = await Deno.readTextFile(`${outdir}/${f}`);
      bytes += text.length;
      assert.ok(!text.includes("Deno."), `${f} mentions Deno.`);
      assert.doesNotMatch(text, /(from|import\()\s*["']node:/, `${f} imports a Node built-in`);
      // only relative imports remain (of the build's own chunks): the npm packages are bundled in
      for (const m of text.matchAll(/(?:^|[;\s])(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']/g)) {
        assert.match(m[1], /^\.\/[\w-]+\.js$/, `${f} imports ${m[1]}`);
        imports++;
      }
    }
    assert.ok(imports > 3, `${imports} imports between the outputs found`);
    assert.ok(bytes > 1_000_000, `${bytes} bytes of JavaScript: the npm dependencies are bundled in`);

    const child = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}/tests/build_web_child.ts`, `${outdir}/webdpo.js`, server.url],
      // the browser platform leaves wgpu's backend alone; here, as the Deno platform would, take Vulkan only
      env: { DENO_WEBGPU_BACKEND: "vulkan", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? outdir },
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
