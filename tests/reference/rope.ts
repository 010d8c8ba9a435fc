/**
 * Float64 reference for rotary position embedding as Hugging Face transformers applies it (rotate_half), on
 * row-major [B, H, T, D] (or [B, T, H, D]) arrays with per-row position ids [B, T].
 */

export interface Llama3ScalingRef {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** inv_freq[i] = theta^(−2i/R) (i < R/2), rescaled by the llama3 rule when `scaling` is given. */
export function invFreqRef(R: number, theta: number, scaling?: Llama3ScalingRef): Float64Array {
  const f = new Float64Array(R / 2);
  for (let i = 0; i < R / 2; i++) f[i] = Math.pow(theta, -(2 * i) / R);
  if (!scaling) return f;
  const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: orig } = scaling;
  return f.map((v) => {
    const wavelen = (2 * Math.PI) / v;
    if (wavelen < orig / hi) return v; // high frequency: kept
    if (wavelen > orig / lo) return v / factor; // low frequency: scaled
    const smooth = (orig / wavelen - lo) / (hi - lo);
    return (1 - smooth) * (v / factor) + smooth * v;
  });
}

/**
 * out = x·cos + rotate_half(x)·sin over the first R dims (the rest passed through), with the angle formed as
 * transformers forms it in float32: fround(fround(position) · fround(inv_freq)); cos and sin of that angle are
 * taken in float64. `inverse` rotates by −angle.
 */
export function ropeRef(
  x: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  opts: { R?: number; layout?: "bhtd" | "bthd"; inverse?: boolean } = {},
): Float64Array {
  const layout = opts.layout ?? "bhtd";
  const [B, A1, A2, D] = shape;
  const [H, T] = layout === "bhtd" ? [A1, A2] : [A2, A1];
  const R = opts.R ?? D;
  const half = R / 2;
  const sign = opts.inverse ? -1 : 1;
  const out = Float64Array.from(x);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const base = (layout === "bhtd" ? (b * H + h) * T + t : (b * T + t) * H + h) * D;
        const pos = Math.fround(positions[b * T + t]);
        for (let i = 0; i < half; i++) {
          const angle = Math.fround(pos * Math.fround(invFreq[i]));
          const cos = Math.cos(angle);
          const sin = sign * Math.sin(angle);
          const x1 = x[base + i];
          const x2 = x[base + i + half];
          // rotate_half(x) = [−x2, x1]
          out[base + i] = x1 * cos + -x2 * sin;
          out[base + i + half] = x2 * cos + x1 * sin;
        }
      }
    }
  }
  return out;
}
