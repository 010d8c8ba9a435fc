/**
 * sum, mean and max over the last axis (`{axis: -1}`) or over all elements (no axis).
 *
 * Shapes: over the last axis, [..., C] → [..., 1] with `keepDim`, [...] without. Over all elements → a
 * one-element tensor of shape [] ([1, 1, …] with `keepDim`).
 *
 * Kernels (kernels/reduce.wgsl): short rows (C ≤ 64) take one invocation per row; longer rows one workgroup per
 * row (64 or 256 invocations, strided loads, then a shared-memory tree), except on CPU adapters with many rows
 * (see `oneInvocationPerRow`). A full reduction runs passes of the workgroup kernel over chunks of 4096
 * elements until one value is left (10M elements: 2 passes). Every order is fixed, no atomics: results are
 * reproducible bit for bit on a given device. A workgroup takes L/WG elements per invocation: rows of more than
 * about 15M elements (of a tensor with several rows) would exceed lavapipe's loop limit (src/gpu/loop_budget.ts)
 * and are refused there with a GpuLimitError.
 *
 * Backward (kernels/reduce_backward.wgsl): sum broadcasts dy back over the row, mean broadcasts dy/C, max sends
 * dy to the argmax element saved by the forward (the first index among equal maxima).
 *
 * Empty reductions: sum over zero elements is 0; mean and max over zero elements throw a RangeError.
 * NaN inputs: sum and mean propagate them; max's handling of NaN is unspecified.
 */
import { cpuKernels } from "../../gpu/device.ts";
import { kernel } from "../../gpu/kernel.ts";
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { clearBuffer, dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";

const K = kernel("reduce.wgsl");
const KB = kernel("reduce_backward.wgsl");

/** Rows up to this length are reduced by one invocation each. */
const THREAD_ROW_MAX = 64;
/** On a CPU adapter, this many rows or more are reduced by one invocation each, up to CPU_THREAD_ROW_LEN_MAX. */
const CPU_THREAD_ROWS_MIN = 256;
/**
 * The longest row one invocation takes on a CPU adapter: lavapipe stops an invocation silently after about 65,535
 * loop iterations, and the row kernels loop over a row up to three times (softmax: max, sum, write), so rows of
 * the LM head's width (49,152) came back as zeros. Longer rows take the workgroup kernels.
 */
export const CPU_THREAD_ROW_LEN_MAX = 16384;

/**
 * Whether a row-wise kernel should give each row one invocation (else one workgroup). Short rows always do.
 * CPU adapters (lavapipe/llvmpipe/SwiftShader run each invocation as one SIMD lane) do for many rows of up to
 * CPU_THREAD_ROW_LEN_MAX elements too: the serial loop there beats a workgroup tree with barriers (measured 2.7×
 * on [4096, 576]); GPUs want the workgroup tree for coalesced loads.
 */
export function oneInvocationPerRow(rows: number, C: number): boolean {
  if (C <= THREAD_ROW_MAX) return true;
  return cpuKernels() && rows >= CPU_THREAD_ROWS_MIN && C <= CPU_THREAD_ROW_LEN_MAX;
}
/** Chunk length of each pass of a full reduction. */
const CHUNK = 4096;

export interface ReduceOptions {
  /** -1 (or ndim-1): reduce the last axis. Omitted: reduce all elements. */
  axis?: number;
  /** Keep the reduced axis as size 1 (all axes as size 1 for a full reduction). */
  keepDim?: boolean;
}

interface Plan {
  /** Number of independent reductions (rows). */
  rows: number;
  /** Elements per row. */
  C: number;
  outShape: number[];
}

function plan(op: string, x: Tensor, opts: ReduceOptions): Plan {
  x.assertAlive();
  if (x.dtype !== "f32") throw new TypeError(`${op}: needs an f32 tensor, got ${x.dtype}`);
  const { axis, keepDim = false } = opts;
  if (axis === undefined) {
    return { rows: 1, C: x.size, outShape: keepDim ? x.shape.map(() => 1) : [] };
  }
  if (x.ndim === 0) {
    throw new RangeError(`${op}: axis ${axis} given for a 0-d tensor; omit axis to reduce all`);
  }
  if (axis !== -1 && axis !== x.ndim - 1) {
    throw new RangeError(
      `${op}: only the last axis (-1 or ${
        x.ndim - 1
      }) or all elements (no axis) can be reduced; got axis ${axis} ` +
        `for shape [${x.shape}]`,
    );
  }
  const C = x.shape[x.ndim - 1];
  const lead = x.shape.slice(0, -1);
  return { rows: lead.reduce((a, b) => a * b, 1), C, outShape: keepDim ? [...lead, 1] : lead };
}

function wgSize(L: number): number {
  return L >= 2048 ? 256 : 64;
}

/** Refuses rows too long for one workgroup per row on a loop-limited adapter (a strided pass and a tree). */
function checkRowLength(op: string, L: number): void {
  const WG = wgSize(L);
  checkLoopBudget(
    `${op} over rows of ${L}`,
    Math.ceil(L / WG) + 1 + Math.log2(WG) + 1,
    "reduce the tensor in two steps (reshape each row to [k, L/k], reduce the last axis, then again)",
  );
}

/** One pass of sum: rows of L elements (the last may be short) of a buffer of n, scaled. */
function sumPass(
  x: Tensor,
  rows: number,
  L: number,
  n: number,
  scale: number,
  outShape: number[],
  tree = false,
): Tensor {
  const out = empty(outShape);
  const params = { rows, L, n, scale };
  if (!tree && oneInvocationPerRow(rows, L)) {
    dispatch({
      kernel: K,
      entry: "sum_thread",
      params,
      buffers: [x.binding, out.binding],
      workgroups: grid1d(rows, 64),
    });
  } else {
    checkRowLength("sum", L);
    dispatch({
      kernel: K,
      entry: "sum_wg",
      constants: { WG: wgSize(L) },
      params,
      buffers: [x.binding, out.binding],
      workgroups: grid1d(rows, 1),
    });
  }
  return out;
}

/** One pass of max with argmax (mode: 0 index within row, 1 flat index, 2 looked up in idxIn). */
function maxPass(
  x: Tensor,
  rows: number,
  L: number,
  n: number,
  mode: 0 | 1 | 2,
  idxIn: Tensor | null,
  outShape: number[],
  tree = false,
): { values: Tensor; indices: Tensor } {
  const values = empty(outShape);
  const indices = empty([rows], "i32");
  const placeholder = idxIn ?? empty([1], "i32");
  const params = { rows, L, n, mode };
  const buffers = [x.binding, values.binding, indices.binding, placeholder.binding];
  if (!tree && oneInvocationPerRow(rows, L)) {
    dispatch({ kernel: K, entry: "max_thread", params, buffers, workgroups: grid1d(rows, 64) });
  } else {
    checkRowLength("max", L);
    dispatch({
      kernel: K,
      entry: "max_wg",
      constants: { WG: wgSize(L) },
      params,
      buffers,
      workgroups: grid1d(rows, 1),
    });
  }
  if (!idxIn) placeholder.dispose();
  return { values, indices };
}

/** Σ (times scale) over each row, or over everything in passes; no graph. */
function sumRaw(x: Tensor, p: Plan, scale: number): Tensor {
  if (p.rows === 0) return empty(p.outShape);
  if (p.C === 0) {
    const out = empty(p.outShape);
    clearBuffer(out.storage.buffer, 0, Math.max(4, out.bytes));
    return out;
  }
  if (p.rows > 1 || p.C <= CHUNK) return sumPass(x, p.rows, p.C, x.size, scale, p.outShape);
  // full reduction in passes
  let cur = x;
  let n = x.size;
  while (true) {
    const rows = Math.ceil(n / CHUNK);
    const last = rows === 1;
    const next = sumPass(cur, rows, CHUNK, n, last ? scale : 1, last ? p.outShape : [rows], true);
    if (cur !== x) cur.dispose();
    if (last) return next;
    cur = next;
    n = rows;
  }
}

/** max and argmax of each row (argmax within the row; for a full reduction the flat index); no graph. */
function maxRaw(x: Tensor, p: Plan): { values: Tensor; indices: Tensor } {
  if (p.rows === 0) return { values: empty(p.outShape), indices: empty([0], "i32") };
  if (p.rows > 1 || p.C <= CHUNK) return maxPass(x, p.rows, p.C, x.size, 0, null, p.outShape);
  let cur = x;
  let idx: Tensor | null = null;
  let n = x.size;
  while (true) {
    const rows = Math.ceil(n / CHUNK);
    const last = rows === 1;
    const r = maxPass(cur, rows, CHUNK, n, idx ? 2 : 1, idx, last ? p.outShape : [rows], true);
    if (cur !== x) cur.dispose();
    idx?.dispose();
    if (last) return r;
    cur = r.values;
    idx = r.indices;
    n = rows;
  }
}

function sumBackward(dy: Tensor, xShape: readonly number[], C: number, scale: number): Tensor {
  const dx = empty(xShape);
  if (dx.size > 0) {
    dispatch({
      kernel: KB,
      entry: "sum_back",
      params: { n: dx.size, C, scale },
      buffers: [dy.binding, dx.binding],
      workgroups: grid1d(dx.size, 256),
    });
  }
  return dx;
}

/** Sum over the last axis (`{axis: -1}`) or over all elements. */
export function sum(x: Tensor, opts: ReduceOptions = {}): Tensor {
  const p = plan("sum", x, opts);
  return record("sum", [x], sumRaw(x, p, 1), (dy) => [sumBackward(dy, x.shape, p.C, 1)]);
}

/** Mean over the last axis (`{axis: -1}`) or over all elements. */
export function mean(x: Tensor, opts: ReduceOptions = {}): Tensor {
  const p = plan("mean", x, opts);
  if (p.C === 0 && p.rows > 0) {
    throw new RangeError(`mean: cannot average zero elements (shape [${x.shape}])`);
  }
  return record("mean", [x], sumRaw(x, p, 1 / p.C), (dy) => [sumBackward(dy, x.shape, p.C, 1 / p.C)]);
}

/**
 * Maximum over the last axis (`{axis: -1}`) or over all elements. The gradient goes to the first position of
 * the maximum in each row.
 */
export function max(x: Tensor, opts: ReduceOptions = {}): Tensor {
  const p = plan("max", x, opts);
  if (p.C === 0 && p.rows > 0) {
    throw new RangeError(`max: cannot take the maximum of zero elements ([${x.shape}])`);
  }
  const { values, indices } = maxRaw(x, p);
  if (!needsGrad(x)) {
    indices.dispose();
    return values;
  }
  return record("max", [x], values, (dy) => {
    const dx = empty(x.shape);
    if (dx.size > 0) {
      dispatch({
        kernel: KB,
        entry: "max_back",
        params: { n: dx.size, C: p.C },
        buffers: [dy.binding, dx.binding, indices.binding],
        workgroups: grid1d(dx.size, 256),
      });
    }
    indices.dispose();
    return [dx];
  });
}

/**
 * Max and the index of its first occurrence over the last axis, without autograd (indices i32, shape of the
 * values). For a full reduction the index is the flat position.
 */
export function maxWithIndices(x: Tensor, opts: ReduceOptions = {}): { values: Tensor; indices: Tensor } {
  const p = plan("maxWithIndices", x, opts);
  if (p.C === 0 && p.rows > 0) {
    throw new RangeError(`maxWithIndices: no elements in the rows of [${x.shape}]`);
  }
  const r = maxRaw(x, p);
  return { values: r.values, indices: reshapeIndices(r.indices, p.outShape) };
}

function reshapeIndices(idx: Tensor, shape: number[]): Tensor {
  if (idx.shape.join() === shape.join()) return idx;
  const v = view(idx, shape);
  idx.dispose();
  return v;
}
