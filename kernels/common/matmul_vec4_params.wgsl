// common/matmul_vec4_params.wgsl — what the vec4 matmul kernels for CPU adapters share (`// requires:
// common/matmul_vec4_params.wgsl`): matmul_register, matmul_subgroup and matmul_gemv. Their dispatch
// parameters, the operand bindings, the stores into C, and the load of a 4 (rows) × 4 (k) block of A in either
// layout.
//
// Layout: row-major, batch-major; operands are vec4 rows whose length (lda4, ldb4 vec4s) is the logical row
// length rounded up to a multiple of 4, the padding zero. For batch z of a dispatch: A = a[offA4 + z·strideA4
// ...] holding [M, K] (TRANS_A: [K, M]); B = b[offB4 + z·strideB4 ...] holding [K, N] (TRANS_B: [N, K]),
// strideB4 = 0 sharing B; C = c[offC + z·strideC ...]: [M, N], f32, unpadded. mOff and nOff are the dispatch's
// first row and column of C. Params.accumulate ≠ 0: C += alpha·AB instead of C = alpha·AB.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  lda4: u32,
  ldb4: u32,
  strideA4: u32,
  strideB4: u32,
  strideC: u32,
  offA4: u32,
  offB4: u32,
  offC: u32,
  mOff: u32,
  nOff: u32,
  accumulate: u32,
  alpha: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// Four vec4s: 16 consecutive columns of one row (of C or of B), or 4 rows × 4 k of A.
struct Row { c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f }

// A[m .. m+3, k .. k+3] as 4 vec4s, one per row (each holding k .. k+3); ab = A's first vec4. Rows past M are
// clamped to M − 1 (their results are never stored); entries past K are 0.
fn loadA(ab: u32, m: u32, k: u32) -> Row {
  if (TRANS_A) {
    // A stored [K, M]: one vec4 along m per k, then transposed (free: vec4 components are separate registers
    // on CPU adapters).
    let g = min(m / 4u, p.lda4 - 1u);
    let k1 = p.K - 1u;
    let t0 = b4zero(a[ab + min(k, k1) * p.lda4 + g], k < p.K);
    let t1 = b4zero(a[ab + min(k + 1u, k1) * p.lda4 + g], k + 1u < p.K);
    let t2 = b4zero(a[ab + min(k + 2u, k1) * p.lda4 + g], k + 2u < p.K);
    let t3 = b4zero(a[ab + min(k + 3u, k1) * p.lda4 + g], k + 3u < p.K);
    return Row(vec4f(t0.x, t1.x, t2.x, t3.x), vec4f(t0.y, t1.y, t2.y, t3.y), vec4f(t0.z, t1.z, t2.z, t3.z),
               vec4f(t0.w, t1.w, t2.w, t3.w));
  }
  // A stored [M, K] with rows padded to lda4 vec4s: one vec4 along k per row.
  let m1 = p.M - 1u;
  let g = ab + k / 4u;
  return Row(a[g + min(m, m1) * p.lda4], a[g + min(m + 1u, m1) * p.lda4], a[g + min(m + 2u, m1) * p.lda4],
             a[g + min(m + 3u, m1) * p.lda4]);
}

fn b4zero(v: vec4f, keep: bool) -> vec4f {
  return select(vec4f(0.0), v, keep);
}

// C[o] = alpha·x, or C[o] += alpha·x when Params.accumulate ≠ 0.
fn put1(o: u32, x: f32) {
  if (p.accumulate != 0u) {
    c[o] += p.alpha * x;
  } else {
    c[o] = p.alpha * x;
  }
}

// C[o .. o+3] = alpha·v (+= with accumulate): four plain stores.
fn put4(o: u32, v: vec4f) {
  put1(o, v.x);
  put1(o + 1u, v.y);
  put1(o + 2u, v.z);
  put1(o + 3u, v.w);
}
