/**
 * Plain float64 references for matmul: the forward product and its gradients, written straight from the
 * definition Y[z, m, n] = Σ_k op(A)[z, m, k]·op(B)[z, k, n] (no transposed-product shortcuts, so they check the
 * backward formulas rather than repeat them).
 */

export interface MatmulCase {
  /** Number of batches (1 for plain 2-D operands). */
  batch: number;
  M: number;
  N: number;
  K: number;
  /** a stored [batch, K, M] instead of [batch, M, K]. */
  transA?: boolean;
  /** b stored [batch, N, K] instead of [batch, K, N] (or [N, K] when shared). */
  transB?: boolean;
  /** b is one 2-D matrix used by every batch. */
  sharedB?: boolean;
}

function indexers(c: MatmulCase) {
  const { M, N, K } = c;
  const ai = (z: number, m: number, k: number) => z * M * K + (c.transA ? k * M + m : m * K + k);
  const bz = c.sharedB ? 0 : K * N;
  const bi = (z: number, k: number, n: number) => z * bz + (c.transB ? n * K + k : k * N + n);
  return { ai, bi };
}

/** Y = op(A)·op(B), [batch, M, N] flattened. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, c: MatmulCase): Float64Array {
  const { batch, M, N, K } = c;
  const { ai, bi } = indexers(c);
  const y = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ai(z, m, k)] * b[bi(z, k, n)];
        y[(z * M + m) * N + n] = s;
      }
    }
  }
  return y;
}

/** dA and dB (in a's and b's storage layouts) of L = Σ Y·dY. */
export function matmulBackwardRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dy: ArrayLike<number>,
  c: MatmulCase,
): { da: Float64Array; db: Float64Array } {
  const { batch, M, N, K } = c;
  const { ai, bi } = indexers(c);
  const da = new Float64Array(batch * M * K);
  const db = new Float64Array((c.sharedB ? 1 : batch) * K * N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const g = dy[(z * M + m) * N + n];
        for (let k = 0; k < K; k++) {
          da[ai(z, m, k)] += g * b[bi(z, k, n)];
          db[bi(z, k, n)] += g * a[ai(z, m, k)];
        }
      }
    }
  }
  return { da, db };
}

/** The test tolerance for a length-K dot product of entries bounded by aMax and bMax: 1e-5·√K·aMax·bMax. */
export function matmulTolerance(K: number, aMax: number, bMax: number): number {
  return 1e-5 * Math.sqrt(Math.max(K, 1)) * aMax * bMax;
}

/** max |x| of an array (0 when empty). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
