/**
 * weightedRowSum(x [B, T], w [B, T]) = Σ_t w[b, t]·x[b, t] per row (kernels/weighted_row_sum.wgsl), the one
 * masked / weighted row sum of the log-prob paths: per-sequence log-probs (weights 1 or 1/count on scored
 * positions, 0 elsewhere; LD-DPO's α on tail tokens), cross-entropy's mean (−1/count), DPO's pooled metrics.
 * Backward: dx[b, t] = w[b, t]·dy[b] (no gradient for w).
 *
 * Each invocation sums at most ROW_SUM_CHUNK positions in order (lavapipe stops an invocation silently after about
 * 65 535 loop iterations); a longer row gives partial sums that the same kernel adds (weights 1), so every row
 * length works and the result is deterministic.
 */
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { kernel } from "../../gpu/kernel.ts";
import { full } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("weighted_row_sum.wgsl");

/** Positions one invocation sums at most. */
export const ROW_SUM_CHUNK = 8192;

/** out[b] = Σ_t w[b, t]·x[b, t] without a graph: rows longer than ROW_SUM_CHUNK in chunks, then their sums. */
function rowSums(x: Tensor, w: Tensor, B: number, T: number): Tensor {
  const nc = Math.max(1, Math.ceil(T / ROW_SUM_CHUNK));
  const out = empty([B * nc]);
  if (B > 0) {
    dispatch({
      kernel: K,
      entry: "forward",
      params: { B, T, chunk: ROW_SUM_CHUNK, nc },
      buffers: [x.binding, w.binding, out.binding],
      workgroups: grid1d(B * nc, 64),
    });
  }
  if (nc === 1) return out;
  const ones = full([B * nc], 1);
  const total = rowSums(out, ones, B, nc);
  ones.dispose();
  out.dispose();
  return total;
}

/**
 * out [B] = Σ_t w[b, t]·x[b, t] for x and w of B·T elements each (any shapes), recorded with its backward with
 * respect to x. Positions of weight 0 are skipped, so a non-finite x there (an unscored position) does not leak.
 */
export function weightedRowSum(x: Tensor, w: Tensor, B: number, T: number): Tensor {
  if (x.size !== B * T || w.size !== B * T) {
    throw new RangeError(`weightedRowSum: [${x.shape}] and weights [${w.shape}] are not ${B}×${T}`);
  }
  const out = rowSums(x, w, B, T);
  return record("weightedRowSum", [x], out, (dy) => {
    const dx = empty(x.shape);
    if (B * T > 0) {
      dispatch({
        kernel: K,
        entry: "backward",
        params: { B, T },
        buffers: [dy.binding, w.binding, dx.binding],
        workgroups: grid1d(B * T, 256),
      });
    }
    return [dx];
  });
}
