/**
 * log softmax(logits)[label] per row, for callers that already hold logits (kernels/logprob_gather.wgsl), with its
 * backward. Labels: see labels.ts.
 */
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { checkIgnore, IGNORE_INDEX, type Labels, uploadLabels } from "./labels.ts";
import { range, rowBlock } from "./lm_head.ts";

const GATHER = kernel("logprob_gather.wgsl");

/**
 * log softmax(logits)[label] per row, for callers that already hold logits [..., V]; labels has one entry per
 * row. Returns the leading shape; ignored rows give 0. Backward: dLogits = d·(onehot(label) − softmax), 0 on
 * ignored rows. Logits larger than one storage binding are processed in row blocks.
 */
export function logSoftmaxGather(logits: Tensor, labels: Labels, ignoreIndex: number = IGNORE_INDEX): Tensor {
  const what = "logSoftmaxGather";
  checkIgnore(ignoreIndex);
  if (logits.dtype !== "f32") throw new TypeError(`${what}: logits must be f32`);
  if (logits.ndim < 1) throw new RangeError(`${what}: logits must be [N, V], got a scalar`);
  const V = logits.shape[logits.ndim - 1];
  const out = logits.shape.slice(0, -1);
  const N = out.reduce((a, b) => a * b, 1);
  if (V < 1) throw new RangeError(`${what}: the vocabulary dimension is empty (shape [${logits.shape}])`);
  const lab = uploadLabels(what, labels, N, V, ignoreIndex);
  const ownLabels = lab !== labels;
  if (N === 0) {
    if (ownLabels) lab.dispose();
    return empty(out);
  }
  // one workgroup of 64 per row: two strided passes over V and a tree of 6 steps
  checkLoopBudget(
    `${what} over ${V} logits per row`,
    2 * (Math.ceil(V / 64) + 1) + 7,
    "rows this long need a GPU adapter",
  );
  const logp = empty(out);
  const lse = empty([N]);
  const rb = rowBlock(what, N, V);
  for (let r0 = 0; r0 < N; r0 += rb) {
    const r = Math.min(rb, N - r0);
    dispatch({
      kernel: GATHER,
      entry: "forward",
      params: { R: r, V, ROW0: r0, ignore: ignoreIndex },
      buffers: [range(logits, r0 * V, r * V), lab.binding, logp.binding, lse.binding],
      workgroups: grid1d(r, 1),
    });
  }
  if (!needsGrad(logits)) {
    lse.dispose();
    if (ownLabels) lab.dispose();
    return logp;
  }
  return record("logSoftmaxGather", [logits], logp, (dy) => {
    const dz = empty(logits.shape);
    for (let r0 = 0; r0 < N; r0 += rb) {
      const r = Math.min(rb, N - r0);
      dispatch({
        kernel: GATHER,
        entry: "backward",
        params: { R: r, V, ROW0: r0, ignore: ignoreIndex },
        buffers: [
          range(logits, r0 * V, r * V),
          lab.binding,
          range(dz, r0 * V, r * V),
          lse.binding,
          dy.binding,
        ],
        workgroups: grid1d(r * V, 256),
      });
    }
    lse.dispose();
    if (ownLabels) lab.dispose();
    return [dz];
  });
}
