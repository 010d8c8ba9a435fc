/**
 * Float64 references for RMSNorm (Hugging Face LlamaRMSNorm) and LayerNorm (PyTorch, biased variance) over the
 * last dimension of a row-major [N, C] array, forward and backward.
 */

export interface RmsNormRef {
  y: Float64Array;
  rstd: Float64Array;
}

/** y = w · x / sqrt(mean(x²) + eps) per row. */
export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, C: number, eps: number): RmsNormRef {
  const N = C === 0 ? 0 : x.length / C;
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = w[c] * x[n * C + c] * r;
  }
  return { y, rstd };
}

/**
 * Gradients of L = Σ dy·y with respect to x and w, by the chain rule written out independently of the kernel:
 * with s = mean(x²) + eps, r = s^(−1/2), ∂r/∂x_j = −r³·x_j / C, so
 * dx_j = Σ_i dy_i·w_i·(δ_ij·r + x_i·∂r/∂x_j) and dw_i = Σ_rows dy_i·x_i·r.
 */
export function rmsNormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  C: number,
  eps: number,
): { dx: Float64Array; dw: Float64Array } {
  const N = C === 0 ? 0 : x.length / C;
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    let dr = 0; // ∂L/∂r
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dr += dy[i] * w[c] * x[i];
      dw[c] += dy[i] * x[i] * r;
    }
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = dy[i] * w[c] * r + dr * (-(r ** 3) * x[i] / C);
    }
  }
  return { dx, dw };
}

export interface LayerNormRef {
  y: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/** y = (x − mean) / sqrt(var + eps) · w + b per row, var biased (divided by C). */
export function layerNormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  C: number,
  eps: number,
): LayerNormRef {
  const N = C === 0 ? 0 : x.length / C;
  const y = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(v / C + eps);
    mean[n] = m;
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
  }
  return { y, mean, rstd };
}

/**
 * Gradients of L = Σ dy·y with respect to x, w and b, through the intermediate quantities: with d = x − m,
 * v = Σd²/C, r = (v + eps)^(−1/2), y = d·r·w + b:
 *   ∂L/∂d_j (direct) = dy_j·w_j·r;  ∂L/∂r = Σ dy·w·d;  ∂r/∂v = −r³/2;  ∂v/∂d_j = 2d_j/C;
 *   ∂L/∂d_j (total) = dy_j·w_j·r + ∂L/∂r · ∂r/∂v · 2d_j/C;  dx_j = ∂L/∂d_j − Σ_k ∂L/∂d_k / C (since d = x − mean).
 */
export function layerNormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  C: number,
  eps: number,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const N = C === 0 ? 0 : x.length / C;
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    const d = new Float64Array(C);
    let v = 0;
    for (let c = 0; c < C; c++) {
      d[c] = x[n * C + c] - m;
      v += d[c] ** 2;
    }
    v /= C;
    const r = 1 / Math.sqrt(v + eps);
    let dLdr = 0;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dLdr += dy[i] * w[c] * d[c];
      dw[c] += dy[i] * d[c] * r;
      db[c] += dy[i];
    }
    const dLdv = dLdr * (-(r ** 3) / 2);
    const dd = new Float64Array(C);
    let sum = 0;
    for (let c = 0; c < C; c++) {
      dd[c] = dy[n * C + c] * w[c] * r + dLdv * (2 * d[c]) / C;
      sum += dd[c];
    }
    for (let c = 0; c < C; c++) dx[n * C + c] = dd[c] - sum / C;
  }
  return { dx, dw, db };
}
