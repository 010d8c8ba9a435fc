/**
 * The worker of `ParserSandbox` (fuzz_sandbox.ts): writes one fuzz case's files into a fresh temporary folder, runs
 * a named target of a targets module on it, and posts back how it ended, with the time it took and how much memory
 * the case left allocated: the process's virtual size (ArrayBuffers, whose zeroed pages need not be touched to
 * count) or the JS heap, whichever grew more. No collection runs in between, so an allocation driven by a claimed
 * size shows even when the parser dropped it before failing.
 */
/// <reference lib="deno.worker" />
import { WebDPOError } from "../src/gpu/errors.ts";
import type { Outcome, SandboxRequest } from "./fuzz_sandbox.ts";

type Target = (dir: string, args: unknown) => Promise<unknown>;

/** The process's virtual memory size in bytes (Linux), or 0 where /proc is not there. */
function virtualBytes(): number {
  try {
    const m = /VmSize:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function memory(): { virtual: number; heap: number } {
  return { virtual: virtualBytes(), heap: Deno.memoryUsage().heapTotal };
}

function growthSince(before: { virtual: number; heap: number }): number {
  const now = memory();
  return Math.max(now.virtual - before.virtual, now.heap - before.heap, 0);
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
