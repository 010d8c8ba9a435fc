/**
 * Benchmark harness shared by every family in bench/families/. A family exports `family: BenchFamily`; each
 * result is printed at once as one JSON line (machine-readable) and gathered into the human table at the end.
 */
import { gpu, sync } from "../mod.ts";

/** One measured figure. `bench` names the family; the rest depends on it (shape, variant, figure). */
export interface BenchResult {
  bench: string;
  variant?: string;
  adapter?: string;
  ms?: number;
  gflops?: number;
  gbps?: number;
  tokens_per_s?: number;
  peak_bytes?: number;
  [key: string]: string | number | boolean | undefined;
}

export interface BenchContext {
  /** True for `--quick` (smaller sizes, fewer iterations; used by the test that keeps the benchmark working). */
  quick: boolean;
  /** Emits a result line. */
  emit(r: BenchResult): void;
}

export interface BenchFamily {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}

/**
 * Times `fn` (which records GPU work) end to end: warm-up runs, then `iters` runs inside one measurement,
 * waiting for the GPU to finish. Returns milliseconds per run (the median of `repeats` measurements).
 */
export async function timeGpu(
  fn: () => void | Promise<void>,
  { warmup = 1, iters = 3, repeats = 3 }: { warmup?: number; iters?: number; repeats?: number } = {},
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  await sync();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) await fn();
    await sync();
    times.push((performance.now() - t0) / iters);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export function adapterName(): string {
  return gpu().info.adapterName;
}
