/**
 * Plain float64 reference for scaled-dot-product attention (materialised softmax, one head at a time), forward and
 * backward. Written from the definition, independently of the kernels' online softmax:
 *
 *   S = q·kᵀ·scale over the visible keys, P = softmax(S) (a row with no visible key is all zeros),
 *   out = P·v;  dV = Pᵀ·dO,  dP = dO·vᵀ,  dS_ij = P_ij·(dP_ij − Σ_j' P_ij'·dP_ij'),  dQ = scale·dS·k,
 *   dK = scale·dSᵀ·q.
 */

export interface AttnShape {
  B: number;
  H: number;
  HKV: number;
  TQ: number;
  TK: number;
  D: number;
}

export interface AttnRefOptions {
  /** [B·TK] values, non-zero = real token. */
  mask?: ArrayLike<number>;
  window?: number;
  scale?: number;
  causal?: boolean;
  /** [B·TK] a sequence id per position (packed sequences): a query sees only keys with its own id. */
  segmentIds?: ArrayLike<number>;
  /**
   * [B·TK] the set of sequences each position belongs to, as a bit mask (pairs sharing a prefix: a prefix
   * position belongs to both sequences of its pair): a query sees only keys that share a sequence with it.
   */
  sequenceSets?: ArrayLike<number>;
}

/** Whether query row i (absolute position i + TK − TQ) of batch b sees key s. */
export function visible(sh: AttnShape, o: AttnRefOptions, b: number, i: number, s: number): boolean {
  if (o.mask && o.mask[b * sh.TK + s] === 0) return false;
  const t = i + sh.TK - sh.TQ;
  if (o.segmentIds && o.segmentIds[b * sh.TK + s] !== o.segmentIds[b * sh.TK + t]) return false;
  if (o.sequenceSets && (o.sequenceSets[b * sh.TK + s] & o.sequenceSets[b * sh.TK + t]) === 0) return false;
  if (o.causal === false) return true;
  if (s > t) return false;
  if (o.window !== undefined && t - s >= o.window) return false;
  return true;
}

/** The probabilities P [TQ, TK] of head h in batch b (float64), and the row logsumexps. */
function probs(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  sh: AttnShape,
  o: AttnRefOptions,
  b: number,
  h: number,
): { P: Float64Array; L: Float64Array } {
  const { H, HKV, TQ, TK, D } = sh;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const hk = Math.floor(h / (H / HKV));
  const qb = (b * H + h) * TQ * D;
  const kb = (b * HKV + hk) * TK * D;
  const P = new Float64Array(TQ * TK);
  const L = new Float64Array(TQ);
  for (let i = 0; i < TQ; i++) {
    let max = -Infinity;
    for (let s = 0; s < TK; s++) {
      if (!visible(sh, o, b, i, s)) continue;
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[qb + i * D + d] * k[kb + s * D + d];
      P[i * TK + s] = dot * scale;
      max = Math.max(max, dot * scale);
    }
    if (max === -Infinity) {
      L[i] = -Infinity; // no visible key: P stays 0
      continue;
    }
    let sum = 0;
    for (let s = 0; s < TK; s++) {
      if (!visible(sh, o, b, i, s)) continue;
      const e = Math.exp(P[i * TK + s] - max);
      P[i * TK + s] = e;
      sum += e;
    }
    for (let s = 0; s < TK; s++) if (visible(sh, o, b, i, s)) P[i * TK + s] /= sum;
    L[i] = max + Math.log(sum);
  }
  return { P, L };
}

/** out [B, H, TQ, D] and lse [B, H, TQ]. */
export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  sh: AttnShape,
  o: AttnRefOptions = {},
): { out: Float64Array; lse: Float64Array } {
  const { B, H, HKV, TQ, TK, D } = sh;
  const out = new Float64Array(B * H * TQ * D);
  const lse = new Float64Array(B * H * TQ);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const { P, L } = probs(q, k, sh, o, b, h);
      const vb = (b * HKV + Math.floor(h / (H / HKV))) * TK * D;
      const ob = (b * H + h) * TQ * D;
      for (let i = 0; i < TQ; i++) {
        lse[(b * H + h) * TQ + i] = L[i];
        for (let s = 0; s < TK; s++) {
          const pr = P[i * TK + s];
          if (pr === 0) continue;
          for (let d = 0; d < D; d++) out[ob + i * D + d] += pr * v[vb + s * D + d];
        }
      }
    }
  }
  return { out, lse };
}

/** dq [B, H, TQ, D], dk and dv [B, HKV, TK, D] for the output gradient dout. */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  sh: AttnShape,
  o: AttnRefOptions = {},
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, H, HKV, TQ, TK, D } = sh;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const dq = new Float64Array(B * H * TQ * D);
  const dk = new Float64Array(B * HKV * TK * D);
  const dv = new Float64Array(B * HKV * TK * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const { P } = probs(q, k, sh, o, b, h);
      const kvb = (b * HKV + Math.floor(h / (H / HKV))) * TK * D;
      const qb = (b * H + h) * TQ * D;
      for (let i = 0; i < TQ; i++) {
        const dP = new Float64Array(TK);
        let rowDot = 0;
        for (let s = 0; s < TK; s++) {
          let acc = 0;
          for (let d = 0; d < D; d++) acc += dout[qb + i * D + d] * v[kvb + s * D + d];
          dP[s] = acc;
          rowDot += P[i * TK + s] * acc;
        }
        for (let s = 0; s < TK; s++) {
          const pr = P[i * TK + s];
          if (pr === 0) continue;
          const dS = pr * (dP[s] - rowDot);
          for (let d = 0; d < D; d++) {
            dv[kvb + s * D + d] += pr * dout[qb + i * D + d];
            dq[qb + i * D + d] += scale * dS * k[kvb + s * D + d];
            dk[kvb + s * D + d] += scale * dS * q[qb + i * D + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
