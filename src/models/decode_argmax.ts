/**
 * Greedy decoding's pick on the GPU (kernels/argmax_rows.wgsl): for each row of logits, the column of its largest
 * value, the first on ties, with `pickToken`'s host loop's answer in every case (NaNs never win; a NaN in column 0
 * gives 0). `generate` feeds the result straight into the next step's embedding lookup, so a greedy step does not
 * wait for its logits to reach the host. No autograd.
 */
import { kernel } from "../gpu/kernel.ts";
import { checkLoopBudget } from "../gpu/loop_budget.ts";
import { dispatch } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("argmax_rows.wgsl");
/** The kernel's invocations per row (its loop runs ceil(V / LANES) times). */
const LANES = 64;
const MAX_ROWS = 65535;

/** The argmax of each row of x [..., V] (f32), as an i32 tensor of x's leading shape. */
export function argmaxRows(x: Tensor): Tensor {
  x.assertAlive();
  if (x.dtype !== "f32" || x.ndim < 1) {
    throw new TypeError(`argmaxRows: expected an f32 tensor [..., V], got ${x.dtype} [${x.shape}]`);
  }
  const V = x.shape[x.ndim - 1];
  const R = V === 0 ? 0 : x.size / V;
  if (V === 0) throw new RangeError(`argmaxRows: rows of 0 columns [${x.shape}] have no argmax`);
  if (R > MAX_ROWS) throw new RangeError(`argmaxRows: ${R} rows, at most ${MAX_ROWS} a call`);
  // the column loop (and its exit test), then the 6 merge steps and theirs
  checkLoopBudget("argmaxRows", Math.ceil(V / LANES) + 1 + 7, "use rows of fewer columns");
  const out = empty(x.shape.slice(0, -1), "i32");
  dispatch({
    kernel: K,
    params: { V },
    buffers: [x.binding, out.binding],
    workgroups: [R, 1, 1],
  });
  return out;
}
