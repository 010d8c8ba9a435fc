/**
 * The platform seam (src/io): no `Deno.` below the CLI outside the Deno implementation; one contract of file
 * behaviour run on both implementations (Deno's on a temporary folder, the browser's on an in-memory folder
 * handle, with and without `move`); the browser's URL mounts against a local server with and without range
 * support, and picked files; library code (safetensors, checkpoints and their manifest, metrics.jsonl, a model
 * folder) running on the browser implementation; the browser host.
 */
import assert from "node:assert/strict";
import { browserFiles, browserPlatform } from "../src/io/browser.ts";
import { browserHost } from "../src/io/browser_host.ts";
import { denoFiles, denoHost } from "../src/io/deno.ts";
import { files, setPlatform } from "../src/io/platform.ts";
import { isNotFound } from "../src/io/types.ts";
import { readSafetensors, writeSafetensors } from "../src/models/safetensors.ts";
import { commitCheckpoint, scanCheckpoints, writeJson } from "../src/train/checkpoint.ts";
import { verifyCheckpoint, writeManifest } from "../src/train/checkpoint_manifest.ts";
import { JsonlLog } from "../src/train/metrics_log.ts";
import { fileContract } from "./io/contract.ts";
import { MemoryDir } from "./io/memory_handle.ts";
import { serve } from "./io/static_server.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("no file under src/ outside src/cli and src/io/deno.ts mentions Deno.", async () => {
  const offenders: string[] = [];
  let seen = 0;
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${root}/${dir}`)) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if (rel !== "src/cli") await walk(rel);
        continue;
      }
      if (!/\.(ts|js|mjs)$/.test(e.name) || rel === "src/io/deno.ts") continue;
      seen++;
      const text = await Deno.readTextFile(`${root}/${rel}`);
      text.split("\n").forEach((line, i) => {
        if (line.includes("Deno.")) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
    }
  };
  await walk("src");
  assert.ok(seen > 100, `walked ${seen} files`);
  assert.deepEqual(offenders, []);
  // and the check can fail: the Deno implementation does mention it
  assert.match(await Deno.readTextFile(`${root}/src/io/deno.ts`), /Deno\.open/);
});

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("file contract: Deno's file system", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fileContract(denoFiles, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file contract: the browser's, on an in-memory folder handle (move, and copy + remove)", async () => {
  for (const canMove of [true, false]) {
    const mem = new MemoryDir("", null, canMove);
    const fs = browserFiles({ mounts: { "/work": mem } });
    await fileContract(fs, "/work/t");
    assert.deepEqual(mem.tree(), ["t/big.bin", "t/old.txt"]);
  }
});

Deno.test("browser files: a path under no mount, read-only mounts and picked files", async () => {
  const fs = browserFiles({ mounts: { "/pick/pairs.jsonl": new File(['{"a":1}\n'], "pairs.jsonl") } });
  await assert.rejects(fs.readText("/elsewhere/x"), /no mount holds this path/);
  assert.equal(await fs.readText("/pick/pairs.jsonl"), '{"a":1}\n');
  assert.equal((await fs.stat("/pick/pairs.jsonl"))?.size, 8);
  assert.equal(await fs.stat("/pick/pairs.jsonl/x"), null);
  await assert.rejects(fs.writeText("/pick/pairs.jsonl", "x"), /read-only in a browser/);
  // files picked one by one make a folder of their mounts
  const folder = browserFiles({
    mounts: {
      "/m/config.json": new Blob(["{}"]),
      "/m/data/a.jsonl": new Blob(["1\n"]),
      "/m/data/b.jsonl": new Blob([]),
    },
  });
  assert.deepEqual(await folder.stat("/m"), { isFile: false, isDirectory: true, size: 0 });
  assert.deepEqual(
    (await folder.list("/m")).map((e) => [e.name, e.isFile, e.isDirectory]).sort(),
    [["config.json", true, false], ["data", false, true]],
  );
  assert.deepEqual((await folder.list("/m/data/")).map((e) => e.name).sort(), ["a.jsonl", "b.jsonl"]);
  assert.equal(await folder.readText("/m/data/a.jsonl"), "1\n");
});

Deno.test("browser files: URL mounts read by range where the server can, else through one Blob; no HEAD", async () => {
  const dir = await Deno.makeTempDir();
  const data = new Uint8Array(10_000).map((_, i) => i % 256);
  await Deno.writeFile(`${dir}/w.bin`, data);
  await Deno.writeTextFile(`${dir}/c.json`, '{"x": 1}');
  try {
    for (const [ranges, head] of [[true, true], [false, true], [true, false]]) {
      const s = serve(dir, ranges, head);
      try {
        const fs = browserFiles({ mounts: { "/m": s.url } });
        assert.equal(await fs.readText("/m/c.json"), '{"x": 1}');
        assert.equal((await fs.stat("/m/w.bin"))?.size, 10_000);
        assert.equal(await fs.stat("/m/none"), null);
        await assert.rejects(fs.readText("/m/none"), (e) => isNotFound(e));
        const f = await fs.open("/m/w.bin");
        assert.equal(f.size, 10_000);
        assert.deepEqual(await f.read(9_000, 1_000), data.subarray(9_000));
        assert.deepEqual(await f.read(10, 3), data.subarray(10, 13));
        await assert.rejects(f.read(9_999, 2), RangeError);
        await f.close();
        const gets = s.requests.filter((r) => r.startsWith("GET /w.bin"));
        // without HEAD, stat asks for the first byte (and its Content-Range gave the size above)
        if (!head) assert.equal(gets.shift(), "GET /w.bin bytes=0-0");
        if (ranges) {
          assert.deepEqual(gets, [
            "GET /w.bin bytes=0-0",
            "GET /w.bin bytes=9000-9999",
            "GET /w.bin bytes=10-12",
          ]);
        } else assert.deepEqual(gets, ["GET /w.bin bytes=0-0"], "one whole-file response, sliced");
        await assert.rejects(fs.list("/m"), /cannot be listed/);
        await assert.rejects(fs.writeText("/m/new.txt", "x"), /read-only/);
      } finally {
        await s.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("library code on the browser platform: safetensors, checkpoints with their manifest, metrics.jsonl", async () => {
  const mem = new MemoryDir();
  const before = setPlatform(browserPlatform({ mounts: { "/opfs": mem } }));
  try {
    const a = new Float32Array([1, -2, 3.5, 0.25, 7, 8]);
    await files().mkdir("/opfs/run");
    await writeSafetensors("/opfs/run/w.safetensors", [{ name: "a", shape: [2, 3], data: a }]);
    const back = await readSafetensors("/opfs/run/w.safetensors");
    assert.deepEqual(back.get("a")?.data, a);

    const final = await commitCheckpoint("/opfs/run", 3, async (d) => {
      for (
        const f of [
          "config.json",
          "trainer_state.json",
          "training_args.json",
          "rng_state.json",
          "scheduler.json",
          "webdpo_state.json",
        ]
      ) {
        await writeJson(`${d}/${f}`, { f });
      }
      await writeSafetensors(`${d}/model.safetensors`, [{ name: "a", shape: [6], data: a }]);
      await writeSafetensors(`${d}/optimizer.safetensors`, [{ name: "a.exp_avg", shape: [6], data: a }]);
      await writeManifest(d);
    });
    assert.equal(final, "/opfs/run/checkpoint-3");
    const scan = await scanCheckpoints("/opfs/run");
    assert.deepEqual(scan.incomplete, [], JSON.stringify(scan.incomplete));
    assert.deepEqual(scan.complete, [{ step: 3, path: final }]);
    assert.equal(await verifyCheckpoint(final), true);
    assert.ok(!mem.tree().some((p) => p.includes(".tmp")), mem.tree().join());

    // the manifest the browser wrote (noble's SHA-256) checks under Deno (node:crypto's), and a flipped byte fails
    const manifest = JSON.parse(await files().readText(`${final}/webdpo_manifest.json`));
    const model = await files().readBytes(`${final}/model.safetensors`);
    const h = denoHost.sha256();
    h.update(model);
    assert.equal(manifest.files["model.safetensors"].sha256, h.hex());
    model[model.length - 1] ^= 1;
    const w = await files().create(`${final}/model.safetensors`);
    await w.write(model);
    await w.close();
    await assert.rejects(verifyCheckpoint(final), /damaged/);

    const log = new JsonlLog("/opfs/run/metrics.jsonl", true);
    await log.start(null);
    await log.append({ step: 1, loss: 0.5 });
    await log.append({ step: 2, loss: NaN });
    await log.start(1);
    assert.equal(await files().readText("/opfs/run/metrics.jsonl"), '{"step":1,"loss":0.5}\n');
  } finally {
    setPlatform(before);
  }
});

Deno.test("the browser host: no environment, no signals, no terminal, and exit says why it cannot", () => {
  assert.equal(browserHost.env("HOME"), undefined);
  assert.equal(browserHost.onInterrupt(() => {}), null);
  assert.equal(browserHost.terminal(), null);
  assert.equal(browserHost.availableMemory(), null);
  assert.throws(() => browserHost.exit(130), /no process to end.*stopSignal/);
  const h = browserHost.sha256();
  h.update(enc("abc"));
  assert.equal(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const d = denoHost.sha256();
  d.update(enc("abc"));
  assert.equal(d.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});
