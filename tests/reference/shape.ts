/** Float64 references for the shape and indexing ops: transpose, concat, slice, gatherRows (tests only). */

/** [B, M, N] → [B, N, M]. */
export function transposeRef(x: ArrayLike<number>, B: number, M: number, N: number): Float64Array {
  const out = new Float64Array(B * M * N);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) out[b * M * N + j * M + i] = x[b * M * N + i * N + j];
    }
  }
  return out;
}

/** Rows [start, end) of x viewed as [rows, rowSize]. */
export function sliceRef(x: ArrayLike<number>, rowSize: number, start: number, end: number): Float64Array {
  return Float64Array.from(Array.prototype.slice.call(x, start * rowSize, end * rowSize) as number[]);
}

/** Flat concatenation (axis 0 of contiguous tensors). */
export function concatRef(parts: ArrayLike<number>[]): Float64Array {
  const out: number[] = [];
  for (const p of parts) for (let i = 0; i < p.length; i++) out.push(p[i]);
  return Float64Array.from(out);
}

/** out[n, c] = table[indices[n], c]. */
export function gatherRowsRef(table: ArrayLike<number>, C: number, indices: ArrayLike<number>): Float64Array {
  const out = new Float64Array(indices.length * C);
  for (let n = 0; n < indices.length; n++) {
    for (let c = 0; c < C; c++) out[n * C + c] = table[indices[n] * C + c];
  }
  return out;
}

/** dTable[v, c] = Σ over positions n with indices[n] = v of dy[n, c] (float64 scatter-add). */
export function gatherRowsBackwardRef(
  dy: ArrayLike<number>,
  V: number,
  C: number,
  indices: ArrayLike<number>,
): Float64Array {
  const dt = new Float64Array(V * C);
  for (let n = 0; n < indices.length; n++) {
    for (let c = 0; c < C; c++) dt[indices[n] * C + c] += dy[n * C + c];
  }
  return dt;
}
