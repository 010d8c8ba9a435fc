/**
 * Shared pieces of the norm ops (rmsnorm.ts, layernorm.ts): the choice of a row per invocation on CPU adapters,
 * the row-kernel workgroup size, the row chunking of the weight-gradient reduction, and its second pass
 * (norm_colsum.wgsl), which sums per-chunk partials in chunk order so that weight gradients are deterministic
 * without atomics. Shapes whose invocations would exceed lavapipe's loop limit (src/gpu/loop_budget.ts: rows of
 * more than about 5M channels, or more than about 15M rows) are refused there with a GpuLimitError.
 */
import { cpuKernels } from "../../gpu/device.ts";
import { kernel } from "../../gpu/kernel.ts";
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";

const COLSUM = kernel("norm_colsum.wgsl");

/**
 * Whether the row kernels should take one row per invocation (their `*_rows` entries): on CPU adapters, where a
 * workgroup per row with barriers costs several times more, for rows short enough for lavapipe's loop limit.
 */
function rowPerInvocation(C: number): boolean {
  return C <= 16384 && cpuKernels();
}

/**
 * Entry point, override constants and workgroups of a row kernel (`forward`, `backward_dx`) for N rows of C:
 * its `*_rows` variant in workgroups of 64 rows, or a workgroup of `rowWorkgroupSize(C)` per row.
 */
export function rowDispatch(
  entry: string,
  N: number,
  C: number,
): { entry: string; constants: Record<string, number>; workgroups: [number, number] } {
  if (rowPerInvocation(C)) return { entry: `${entry}_rows`, constants: {}, workgroups: grid1d(N, 64) };
  const WG = rowWorkgroupSize(C);
  // at most three strided passes over the row and two trees (LayerNorm's forward)
  checkLoopBudget(
    `norm ${entry} over rows of ${C}`,
    3 * (Math.ceil(C / WG) + 1) + 2 * (Math.log2(WG) + 1),
    "rows this long need a GPU adapter",
  );
  return { entry, constants: { WG }, workgroups: grid1d(N, 1) };
}

/** Workgroup size (a power of two, 32..256) of the one-workgroup-per-row kernels for rows of C channels. */
function rowWorkgroupSize(C: number): number {
  let wg = 32;
  while (wg < 256 && wg * 8 < C) wg *= 2;
  return wg;
}

/** How the N rows are split for the weight-gradient partial sums: at most 256 chunks of ≥ 16 rows. */
export function rowChunks(N: number): { rowsPerChunk: number; nChunks: number } {
  const rowsPerChunk = Math.max(16, Math.ceil(N / 256));
  checkLoopBudget(
    `norm weight gradient over ${N} rows`,
    rowsPerChunk + 1,
    "run fewer rows per call (a smaller batch)",
  );
  return { rowsPerChunk, nChunks: Math.max(1, Math.ceil(N / rowsPerChunk)) };
}

/** Σ over the rows of `partial` [rows, cols] per column, into a new [cols] tensor. */
export function columnSums(partial: Tensor, rows: number, cols: number): Tensor {
  const out = empty([cols]);
  if (cols > 0) {
    dispatch({
      kernel: COLSUM,
      entry: "colsum",
      params: { rows, cols, split: cols },
      buffers: [partial.binding, out.binding],
      workgroups: [Math.ceil(cols / 64)],
    });
  }
  return out;
}

/** Column sums of `partial` [rows, 2C], split into two new [C] tensors (first C columns, last C columns). */
export function columnSumsSplit(partial: Tensor, rows: number, C: number): [Tensor, Tensor] {
  const a = empty([C]);
  const b = empty([C]);
  if (C > 0) {
    dispatch({
      kernel: COLSUM,
      entry: "colsum_split",
      params: { rows, cols: 2 * C, split: C },
      buffers: [partial.binding, a.binding, b.binding],
      workgroups: [Math.ceil((2 * C) / 64)],
    });
  }
  return [a, b];
}
