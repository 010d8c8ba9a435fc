/**
 * Host cost of one dispatch: the CPU time the JavaScript thread spends recording (and submitting, every 1024) a
 * dispatch of a one-workgroup kernel (accumulate_inplace over 64 elements, so the kernels themselves cost next to
 * nothing), in µs per dispatch.
 *
 * Rows:
 * - "same buffers": every dispatch binds the same two buffers (its bind group comes from the queue's cache);
 * - "new buffers each dispatch": each dispatch binds a pair of buffers not bound together in the last 20 000
 *   dispatches, so each one creates a bind group (what a training step pays where its buffers differ from the
 *   previous step's).
 *
 * Timed by the thread's own CPU time (/proc/thread-self/stat, user + system, 10 ms ticks: at least 20 000
 * dispatches a row, 2 000 with --quick) where Linux offers it, since lavapipe's kernels run on other threads of the
 * same process and a shared machine makes wall time noisy; wall time per dispatch is reported beside it.
 */
import { adapterName, type BenchFamily } from "../harness.ts";
import { addInPlace } from "../../src/autograd/accumulate.ts";
import { sync } from "../../src/gpu/queue.ts";
import { zeros } from "../../src/tensor/create.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

/** The JavaScript thread's CPU seconds (user + system), or null where /proc/thread-self is not there. */
function threadCpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/thread-self/stat");
    // fields after the command name (which may hold spaces) start at ") "
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15) in USER_HZ = 100 ticks
  } catch {
    return null;
  }
}

async function measure(
  n: number,
  pair: (i: number) => [Tensor, Tensor],
): Promise<{ cpu: number | null; wall: number }> {
  await sync();
  const c0 = threadCpuSeconds();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const [a, b] = pair(i);
    addInPlace(a, b);
  }
  const c1 = threadCpuSeconds();
  const wall = (performance.now() - t0) / n * 1000;
  await sync();
  return { cpu: c0 === null || c1 === null ? null : (c1 - c0) / n * 1e6, wall };
}

export const family: BenchFamily = {
  name: "dispatch",
  async run(ctx) {
    const n = ctx.quick ? 2000 : 20000;
    // 200 tensors: 19 900 unordered pairs; pair i walks them so no pair repeats within n dispatches
    const ts = Array.from({ length: 200 }, () => zeros([64]).keep());
    const pairs: [number, number][] = [];
    for (let a = 0; a < ts.length && pairs.length < n; a++) {
      for (let b = 0; b < ts.length && pairs.length < n; b++) if (a !== b) pairs.push([a, b]);
    }
    const rows: [string, (i: number) => [Tensor, Tensor]][] = [
      ["same buffers", () => [ts[0], ts[1]]],
      ["new buffers each dispatch", (i) => [ts[pairs[i][0]], ts[pairs[i][1]]]],
    ];
    // warm: pipelines compiled, arena made
    await measure(100, rows[0][1]);
    for (const [variant, pair] of rows) {
      const r = await measure(n, pair);
      ctx.emit({
        bench: "dispatch",
        variant,
        adapter: adapterName(),
        dispatches: n,
        host_us_per_dispatch: r.cpu ?? undefined,
        wall_us_per_dispatch: r.wall,
      });
    }
    for (const t of ts) t.dispose();
  },
};
