/** Float64 references for LoRA layers, LoRA dropout masks and int8 weight-only products. */

/** y = x·Wᵀ + b for W [out, in] ("out_in"), or x·W + b for W [in, out] ("in_out"); x [N, in] → y [N, out]. */
export function linearRef(
  x: ArrayLike<number>,
  N: number,
  inF: number,
  w: ArrayLike<number>,
  outF: number,
  b: ArrayLike<number> | null,
  layout: "out_in" | "in_out" = "out_in",
): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < inF; k++) {
        s += x[n * inF + k] * (layout === "out_in" ? w[o * inF + k] : w[k * outF + o]);
      }
      y[n * outF + o] = s;
    }
  }
  return y;
}

/** y = linear(x) + s·(x·Aᵀ)·Bᵀ with A [r, in], B [out, r]. */
export function loraLinearRef(
  x: ArrayLike<number>,
  N: number,
  inF: number,
  w: ArrayLike<number>,
  outF: number,
  b: ArrayLike<number> | null,
  A: ArrayLike<number>,
  r: number,
  B: ArrayLike<number>,
  scaling: number,
  layout: "out_in" | "in_out" = "out_in",
): Float64Array {
  const y = linearRef(x, N, inF, w, outF, b, layout);
  for (let n = 0; n < N; n++) {
    const h = new Float64Array(r);
    for (let j = 0; j < r; j++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += x[n * inF + k] * A[j * inF + k];
      h[j] = s;
    }
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += h[j] * B[o * r + j];
      y[n * outF + o] += scaling * s;
    }
  }
  return y;
}

/** W + s·B·A ([out, in]) or, for [in, out] weights, W + s·(B·A)ᵀ: PEFT's merged weight. */
export function mergedWeightRef(
  w: ArrayLike<number>,
  outF: number,
  inF: number,
  A: ArrayLike<number>,
  r: number,
  B: ArrayLike<number>,
  scaling: number,
  layout: "out_in" | "in_out",
): Float64Array {
  const m = Float64Array.from(w);
  for (let o = 0; o < outF; o++) {
    for (let k = 0; k < inF; k++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += B[o * r + j] * A[j * inF + k];
      m[layout === "out_in" ? o * inF + k : k * outF + o] += scaling * s;
    }
  }
  return m;
}

function mix(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The kept elements (1) of LoRA dropout's mask: hash(i, seed) ≥ floor(p·2^32), hash = mix(i + mix(seed)). */
export function dropoutKeepRef(n: number, seed: number, p: number): Uint8Array {
  const thr = Math.min(0xffffffff, Math.floor(p * 4294967296));
  const ms = mix(seed);
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) keep[i] = mix((i + ms) >>> 0) >= thr ? 1 : 0;
  return keep;
}

/** Symmetric per-row int8 quantisation of W [out, in]: s = max|row|/127, q = round(W/s) clamped to ±127. */
export function quantizeRef(
  w: ArrayLike<number>,
  outF: number,
  inF: number,
): { q: Int8Array; scales: Float64Array } {
  const q = new Int8Array(outF * inF);
  const scales = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    let m = 0;
    for (let k = 0; k < inF; k++) m = Math.max(m, Math.abs(w[o * inF + k]));
    const s = Math.fround(m / 127);
    scales[o] = s;
    for (let k = 0; k < inF; k++) {
      q[o * inF + k] = s === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(w[o * inF + k] / s)));
    }
  }
  return { q, scales };
}

/** y [N, out] = x [N, in] · (s ⊙ q)ᵀ. */
export function int8MatmulRef(
  x: ArrayLike<number>,
  N: number,
  inF: number,
  q: Int8Array,
  scales: ArrayLike<number>,
  outF: number,
): Float64Array {
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let k = 0; k < inF; k++) s += x[n * inF + k] * q[o * inF + k];
      y[n * outF + o] = s * scales[o];
    }
  }
  return y;
}

/** dx [N, in] = dy [N, out] · (s ⊙ q). */
export function int8BackwardRef(
  dy: ArrayLike<number>,
  N: number,
  outF: number,
  q: Int8Array,
  scales: ArrayLike<number>,
  inF: number,
): Float64Array {
  const dx = new Float64Array(N * inF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      const g = dy[n * outF + o] * scales[o];
      for (let k = 0; k < inF; k++) dx[n * inF + k] += g * q[o * inF + k];
    }
  }
  return dx;
}
