/**
 * The per-token weight tables DPO's per-sequence sums use (src/autograd/ops/weighted_row_sum.ts), planned on the
 * host from the (shifted) labels: scored positions, LD-DPO's down-weighted tail, per-row scales.
 */
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";

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
