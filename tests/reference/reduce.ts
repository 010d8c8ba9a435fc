/**
 * Float64 references for the row reductions, softmax and logSoftmax (tests only). Inputs are flat arrays viewed
 * as [rows, C] row-major.
 */

/** Σ of each row (times scale). */
export function sumRows(x: ArrayLike<number>, rows: number, C: number, scale = 1): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < C; k++) s += x[r * C + k];
    out[r] = s * scale;
  }
  return out;
}

/** The maximum of each row and the index of its first occurrence. */
export function maxRows(
  x: ArrayLike<number>,
  rows: number,
  C: number,
): { values: Float64Array; indices: number[] } {
  const values = new Float64Array(rows);
  const indices: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = x[r * C];
    let bk = 0;
    for (let k = 1; k < C; k++) {
      if (x[r * C + k] > best) {
        best = x[r * C + k];
        bk = k;
      }
    }
    values[r] = best;
    indices.push(bk);
  }
  return { values, indices };
}

/** Gradient of Σ_r dy[r]·max(row r): dy[r] at the first argmax of each row, 0 elsewhere. */
export function maxRowsBackward(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  C: number,
): Float64Array {
  const { indices } = maxRows(x, rows, C);
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) dx[r * C + indices[r]] = dy[r];
  return dx;
}

/** Gradient of Σ_r dy[r]·scale·Σ(row r): dy[r]·scale everywhere in row r. */
export function sumRowsBackward(dy: ArrayLike<number>, rows: number, C: number, scale = 1): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) dx.fill(dy[r] * scale, r * C, (r + 1) * C);
  return dx;
}

/**
 * softmax of each row. -Infinity entries get probability 0; a row that is entirely -Infinity gives all zeros
 * (the convention of the GPU op). With `log`, log-softmax: -Infinity entries stay -Infinity and a row that is
 * entirely -Infinity gives -Infinity everywhere.
 */
export function softmaxRows(x: ArrayLike<number>, rows: number, C: number, log = false): Float64Array {
  const out = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let k = 0; k < C; k++) m = Math.max(m, x[r * C + k]);
    if (m === -Infinity) {
      out.fill(log ? -Infinity : 0, r * C, (r + 1) * C);
      continue;
    }
    let s = 0;
    for (let k = 0; k < C; k++) s += Math.exp(x[r * C + k] - m);
    const lse = m + Math.log(s);
    for (let k = 0; k < C; k++) {
      const v = x[r * C + k];
      out[r * C + k] = log ? v - lse : Math.exp(v - lse);
    }
  }
  return out;
}

/**
 * Backward of softmaxRows given the forward output y: dx = y⊙(dy − Σ dy⊙y), or for log-softmax
 * dx = dy − exp(y)·Σ dy; an all -Infinity log-softmax row (a constant output) gets dx = 0.
 */
export function softmaxRowsBackward(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  C: number,
  log = false,
): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    let live = false;
    for (let k = 0; k < C; k++) {
      s += log ? dy[r * C + k] : dy[r * C + k] * y[r * C + k];
      live ||= y[r * C + k] !== -Infinity;
    }
    if (log && !live) continue;
    for (let k = 0; k < C; k++) {
      const i = r * C + k;
      dx[i] = log ? dy[i] - Math.exp(y[i]) * s : y[i] * (dy[i] - s);
    }
  }
  return dx;
}
