/**
 * The worker of `ParserSandbox` (fuzz_sandbox.ts): writes one fuzz case's files into a fresh temporary folder, runs
 * a named target of a targets module on it, and posts back how it ended, with the time it took and how much memory
 * the case left allocated in this worker's isolate: JS heap, or the external memory of ArrayBuffers (which counts
 * a claimed-size buffer even when its zeroed pages are never touched), whichever grew more. No collection runs in
 * between, so an allocation driven by a claimed size shows even when the parser dropped it before failing. (The
 * process's virtual size would also count other isolates, such as test files run in parallel.)
 */
/// <reference lib="deno.worker" />
import { WebDPOError } from "../src/gpu/errors.ts";
import type { Outcome, SandboxRequest } from "./fuzz_sandbox.ts";

type Target = (dir: string, args: unknown) => Promise<unknown>;

/** This isolate's memory: the JS heap, and the external memory of its ArrayBuffers (counted when allocated). */
function memory(): { heap: number; external: number } {
  const m = Deno.memoryUsage();
  return { heap: m.heapTotal, external: m.external };
}

function growthSince(before: { heap: number; external: number }): number {
  const now = memory();
  return Math.max(now.heap - before.heap, now.external - before.external, 0);
}

async function writeFiles(dir: string, files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) {
    const slash = name.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${name.slice(0, slash)}`, { recursive: true });
    await Deno.writeFile(`${dir}/${name}`, bytes);
  }
}

async function run(req: SandboxRequest): Promise<Outcome> {
  const targets = await import(req.module) as Record<string, Target>;
  if (req.target === "") return { kind: "result", summary: null, ms: 0, memoryGrowth: 0 }; // loading only
  const target = targets[req.target];
  if (typeof target !== "function") throw new Error(`${req.module} has no target ${req.target}`);
  const dir = await Deno.makeTempDir({ prefix: "webdpo-fuzz-" });
  try {
    await writeFiles(dir, req.files);
    const before = memory();
    const t0 = performance.now();
    const hide = (s: string) => s.replaceAll(dir, "<dir>");
    try {
      const summary = await target(dir, req.args);
      return { kind: "result", summary, ms: performance.now() - t0, memoryGrowth: growthSince(before) };
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      return {
        kind: "error",
        typed: e instanceof WebDPOError,
        name: err.name,
        message: hide(err.message),
        stack: hide(err.stack ?? ""),
        ms: performance.now() - t0,
        memoryGrowth: growthSince(before),
      };
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

self.onmessage = async (ev: MessageEvent<SandboxRequest>) => {
  self.postMessage(await run(ev.data));
};
