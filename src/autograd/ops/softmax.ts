/**
 * softmax(x) and logSoftmax(x) over the last axis, numerically stable (the row maximum is subtracted).
 *
 * Masked entries: -Infinity inputs get probability 0 (softmax) and -Infinity (logSoftmax). A row that is
 * entirely -Infinity has no distribution; softmax returns zeros for it and logSoftmax -Infinity everywhere (the
 * log of those zeros), never NaN, and its gradient is 0.
 *
 * Backward, from the saved output y: softmax dx = y⊙(dy − Σ dy⊙y); logSoftmax dx = dy − softmax(x)·Σ dy.
 *
 * Kernels (kernels/softmax.wgsl, kernels/softmax_backward.wgsl): rows of up to 64 (and, on CPU adapters, any
 * rows when there are ≥ 256 of them) take one invocation each; other rows one workgroup each (64 or 256
 * invocations with an online max/sum merged by a shared-memory tree). See `oneInvocationPerRow` in reduce.ts.
 * Tensors larger than one storage binding (logits of long inputs) run in bands of rows (src/gpu/bands.ts). A
 * workgroup walks its row twice, C/WG per invocation each time: rows past about 7.7M entries would exceed lavapipe's
 * loop limit (src/gpu/loop_budget.ts) and are refused there with a GpuLimitError.
 */
import { type Kernel, kernel } from "../../gpu/kernel.ts";
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { forRowBands } from "../../gpu/bands.ts";
import { type BufferBinding, dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import { oneInvocationPerRow } from "./reduce.ts";

const KF = kernel("softmax.wgsl");
const KB = kernel("softmax_backward.wgsl");

function rowsOf(op: string, x: Tensor): [number, number] {
  x.assertAlive();
  if (x.dtype !== "f32") throw new TypeError(`${op}: needs an f32 tensor, got ${x.dtype}`);
  if (x.ndim === 0) {
    throw new RangeError(`${op}: needs at least one axis (the last is normalised), got a 0-d tensor`);
  }
  const C = x.shape[x.ndim - 1];
  return [C === 0 ? 0 : x.size / C, C];
}

/** Dispatches one row-wise kernel: one invocation per short row, one workgroup per long row. */
function rowDispatch(
  k: Kernel,
  stem: string,
  log: boolean,
  rows: number,
  C: number,
  buffers: BufferBinding[],
): void {
  const params = { rows, C };
  if (oneInvocationPerRow(rows, C)) {
    dispatch({
      kernel: k,
      entry: `${stem}_thread`,
      constants: { LOG: log ? 1 : 0 },
      params,
      buffers,
      workgroups: grid1d(rows, 64),
    });
  } else {
    const WG = C >= 2048 ? 256 : 64;
    // two strided passes over the row and a tree of log2(WG) steps
    checkLoopBudget(
      `${log ? "logSoftmax" : "softmax"} ${stem} over rows of ${C}`,
      2 * (Math.ceil(C / WG) + 1) + Math.log2(WG) + 1,
      "rows this long need a GPU adapter",
    );
    dispatch({
      kernel: k,
      entry: `${stem}_wg`,
      constants: { LOG: log ? 1 : 0, WG },
      params,
      buffers,
      workgroups: grid1d(rows, 1),
    });
  }
}

/** The row kernels over `tensors` ([rows, C] each), in bands of rows where they exceed one binding. */
function rowsInBands(
  k: Kernel,
  stem: string,
  log: boolean,
  rows: number,
  C: number,
  tensors: Tensor[],
): void {
  const operands = tensors.map((t) => ({ binding: t.binding, perRow: C }));
  forRowBands(log ? "logSoftmax" : "softmax", rows, operands, (n, bindings) => {
    rowDispatch(k, stem, log, n, C, bindings);
  });
}

function forwardRaw(x: Tensor, log: boolean, rows: number, C: number): Tensor {
  const y = empty(x.shape);
  if (y.size > 0) rowsInBands(KF, "forward", log, rows, C, [x, y]);
  return y;
}

function backwardRaw(y: Tensor, dy: Tensor, log: boolean, rows: number, C: number): Tensor {
  const dx = empty(y.shape);
  if (dx.size > 0) rowsInBands(KB, "backward", log, rows, C, [y, dy, dx]);
  return dx;
}

function op(name: string, x: Tensor, log: boolean): Tensor {
  const [rows, C] = rowsOf(name, x);
  const y = forwardRaw(x, log, rows, C);
  return record(name, [x], y, (dy) => [backwardRaw(y, dy, log, rows, C)]);
}

/** softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  return op("softmax", x, false);
}

/** log(softmax(x)) over the last axis, computed as x − max − log Σ exp(x − max). */
export function logSoftmax(x: Tensor): Tensor {
  return op("logSoftmax", x, true);
}
