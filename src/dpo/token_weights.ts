/**
 * Per-sequence sums of per-token values with per-token weights (kernels/weighted_row_sum.wgsl), and the weight
 * tables DPO needs, planned on the host from the (shifted) labels: scored positions, LD-DPO's down-weighted tail.
 */
import { record } from "../autograd/record.ts";
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { full, tensor } from "../tensor/create.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("weighted_row_sum.wgsl");

/** Tokens one invocation sums at most (lavapipe stops an invocation silently after about 65 535 iterations). */
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

/** out[b] = Σ_t w[b, t]·x[b, t] for x [B, T] (any shape with B·T elements) and host or GPU weights. */
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

/** Host weights [rows, T]: 1 where the shifted label is scored, else 0; and the scored count per row. */
export function scoredWeights(
  shifted: Int32Array,
  rows: number,
  T: number,
  ignore: number,
): { weights: Float32Array; counts: Int32Array } {
  const weights = new Float32Array(rows * T);
  const counts = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < T; t++) {
      if (shifted[r * T + t] !== ignore) {
        weights[r * T + t] = 1;
        counts[r]++;
      }
    }
    if (counts[r] === 0) {
      throw new RangeError(`row ${r} has no completion token to score (empty completion after truncation)`);
    }
  }
  return { weights, counts };
}

/**
 * LD-DPO (ld_alpha): for each pair (rows i and B + i), tokens of the longer completion beyond the shorter one's
 * length get weight `alpha` instead of 1. Returns new weights.
 */
export function ldWeights(
  base: Float32Array,
  counts: Int32Array,
  B: number,
  T: number,
  alpha: number,
): Float32Array {
  const out = base.slice();
  for (let i = 0; i < B; i++) {
    const [c, r] = [i, B + i];
    const m = Math.min(counts[c], counts[r]);
    for (const row of [c, r]) {
      let seen = 0;
      for (let t = 0; t < T; t++) {
        const k = row * T + t;
        if (out[k] === 0) continue;
        seen++;
        if (seen > m) out[k] = alpha;
      }
    }
  }
  return out;
}

/** A [rows·T] weights tensor from host weights scaled per row (e.g. 1/count for means). */
export function rowScaled(
  weights: Float32Array,
  rows: number,
  T: number,
  scale: (r: number) => number,
): Tensor {
  const w = weights.slice();
  for (let r = 0; r < rows; r++) {
    const s = scale(r);
    for (let t = 0; t < T; t++) w[r * T + t] *= s;
  }
  return tensor(w, [rows * T]);
}
