/**
 * lavapipe's loop limit, in one place. llvmpipe (which runs lavapipe's shaders) ends an invocation silently once
 * its loops have run about 65 535 iterations IN TOTAL: one counter per invocation for every loop it enters, nested
 * or one after another, and a loop of n trips costs n + 1 (its exit test counts). Only loops its compiler unrolls
 * (small constant trip counts) are free. Nothing reports it: the invocation just stops, leaving its outputs unwritten
 * or partial (measured: bench/RESULTS.md, session 5).
 *
 * So every kernel keeps one invocation under LOOP_BUDGET iterations counted as if nothing were unrolled: by more
 * invocations, or by windows of work per dispatch. Where a shape would need more than that and the op has no
 * window, it throws `loopLimitError` instead of returning a wrong value. GPUs have no such limit.
 */
import { gpu, isCpuAdapter } from "./device.ts";
import { GpuLimitError } from "./errors.ts";

/** Iterations one invocation may run, every loop counted as if not unrolled (a margin under 65 535). */
export const LOOP_BUDGET = 60_000;

/** Whether the adapter stops long invocations (CPU adapters: lavapipe/llvmpipe, SwiftShader, fallback). */
export function loopLimited(): boolean {
  return isCpuAdapter(gpu().info);
}

/**
 * Throws a GpuLimitError when, on a loop-limited adapter, one invocation of `what` would run more than LOOP_BUDGET
 * loop iterations (`iterations`: its worst case for the shape); `remedy` says what to change.
 */
export function checkLoopBudget(what: string, iterations: number, remedy: string): void {
  if (iterations <= LOOP_BUDGET || !loopLimited()) return;
  throw new GpuLimitError(
    `${what}: one shader invocation would run ${Math.ceil(iterations)} loop iterations, more than ` +
      `${gpu().info.adapterName} runs (it stops an invocation after about 65 535 in all, without an error, so the ` +
      `result would be wrong); ${remedy}.`,
  );
}
