/**
 * Float64 references for the log-prob ops: logits h·Wᵀ, log softmax gathered at labels, per-row statistics,
 * the backward (dLogits, dH, dW), sequence sums and cross-entropy. Plain loops, no GPU.
 */

/** z[n, v] = Σ_c h[n, c]·W[v, c]. */
export function refLogits(
  h: ArrayLike<number>,
  W: ArrayLike<number>,
  N: number,
  C: number,
  V: number,
): Float64Array {
  const z = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += h[n * C + c] * W[v * C + c];
      z[n * V + v] = s;
    }
  }
  return z;
}

export interface RefLogProbs {
  logp: Float64Array;
  lse: Float64Array;
  logitSum: Float64Array;
  logSumP2: Float64Array;
}

/** From logits [N, V]: log p(label) (0 where ignored), logsumexp, Σ_v z, and log Σ_v p². */
export function refLogSoftmaxGather(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  N: number,
  V: number,
  ignore = -100,
): RefLogProbs {
  const logp = new Float64Array(N);
  const lse = new Float64Array(N);
  const logitSum = new Float64Array(N);
  const logSumP2 = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[n * V + v]);
    let s = 0;
    let s2 = 0;
    let sz = 0;
    for (let v = 0; v < V; v++) {
      const e = Math.exp(z[n * V + v] - m);
      s += e;
      s2 += e * e;
      sz += z[n * V + v];
    }
    lse[n] = m + Math.log(s);
    logitSum[n] = sz;
    // Σ p² = Σ exp(2(z − lse)) = s2·exp(2m − 2·lse) → log Σ p² = log s2 − 2 log s
    logSumP2[n] = Math.log(s2) - 2 * Math.log(s);
    logp[n] = labels[n] === ignore ? 0 : z[n * V + labels[n]] - lse[n];
  }
  return { logp, lse, logitSum, logSumP2 };
}

/** dLogits[n, v] = d[n]·(1[v = label] − softmax[n, v]), 0 on ignored rows. */
export function refLogSoftmaxGatherBackward(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  d: ArrayLike<number>,
  N: number,
  V: number,
  ignore = -100,
): Float64Array {
  const { lse } = refLogSoftmaxGather(z, labels, N, V, ignore);
  const g = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    if (labels[n] === ignore) continue;
    for (let v = 0; v < V; v++) {
      g[n * V + v] = d[n] * ((v === labels[n] ? 1 : 0) - Math.exp(z[n * V + v] - lse[n]));
    }
  }
  return g;
}

/** dH = dZ·W [N, C] and dW = dZᵀ·h [V, C] from the logits' gradient dZ [N, V]. */
export function refLogitsBackward(
  dz: ArrayLike<number>,
  h: ArrayLike<number>,
  W: ArrayLike<number>,
  N: number,
  C: number,
  V: number,
): { dH: Float64Array; dW: Float64Array } {
  const dH = new Float64Array(N * C);
  const dW = new Float64Array(V * C);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const g = dz[n * V + v];
      if (g === 0) continue;
      for (let c = 0; c < C; c++) {
        dH[n * C + c] += g * W[v * C + c];
        dW[v * C + c] += g * h[n * C + c];
      }
    }
  }
  return { dH, dW };
}

/** The whole fused op: forward results and, given d [N], the gradients of Σ d·logp for h and W. */
export function refFusedLogProbs(
  h: ArrayLike<number>,
  W: ArrayLike<number>,
  labels: ArrayLike<number>,
  N: number,
  C: number,
  V: number,
  ignore = -100,
  d?: ArrayLike<number>,
): RefLogProbs & { dH?: Float64Array; dW?: Float64Array } {
  const z = refLogits(h, W, N, C, V);
  const fwd = refLogSoftmaxGather(z, labels, N, V, ignore);
  if (!d) return fwd;
  const dz = refLogSoftmaxGatherBackward(z, labels, d, N, V, ignore);
  return { ...fwd, ...refLogitsBackward(dz, h, W, N, C, V) };
}

/** Per-row Σ (or mean) of x [B, T] over labels ≠ ignore, and the counts. */
export function refSequenceLogps(
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  average = false,
  ignore = -100,
): { logps: Float64Array; counts: number[] } {
  const logps = new Float64Array(B);
  const counts: number[] = [];
  for (let b = 0; b < B; b++) {
    let s = 0;
    let c = 0;
    for (let t = 0; t < T; t++) {
      if (labels[b * T + t] !== ignore) {
        s += x[b * T + t];
        c++;
      }
    }
    counts.push(c);
    logps[b] = average ? s / c : s;
  }
  return { logps, counts };
}

/**
 * The SPEC's sequence log-prob written directly, without any shift helper: for each row b,
 * Σ_{t ≥ 1, labels[b, t] ≠ ignore} log softmax(z[b, t − 1])[labels[b, t]], with z [B, T, V] the logits.
 */
export function refCausalSequenceLogps(
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  V: number,
  ignore = -100,
): Float64Array {
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 1; t < T; t++) {
      const lab = labels[b * T + t];
      if (lab === ignore) continue;
      const row = (b * T + t - 1) * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, z[row + v]);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(z[row + v] - m);
      out[b] += z[row + lab] - m - Math.log(s);
    }
  }
  return out;
}

/** Mean over labels ≠ ignore of −log p(label). */
export function refCrossEntropy(
  h: ArrayLike<number>,
  W: ArrayLike<number>,
  labels: ArrayLike<number>,
  N: number,
  C: number,
  V: number,
  ignore = -100,
): number {
  const { logp } = refFusedLogProbs(h, W, labels, N, C, V, ignore);
  let s = 0;
  let c = 0;
  for (let n = 0; n < N; n++) {
    if (labels[n] !== ignore) {
      s -= logp[n];
      c++;
    }
  }
  return s / c;
}
