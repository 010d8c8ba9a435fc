// matmul_gemv.wgsl — C = alpha·A·Bᵀ (+ C when accumulating) for few rows of A (decoding: one new token per
// sequence), on CPU adapters (lavapipe/llvmpipe). The register kernel's 16-row blocks would compute 15 wasted
// rows per real one; here every B value loaded feeds one row, and the loads of B (the weights: N·K values, each
// read once per row of A) set the speed.
//
// Each invocation computes 4 consecutive columns n .. n+3 of one row m of C: per step it loads 2 vec4s of A's
// row (k .. k+7) and 2 vec4s of each of its 4 rows of B, and keeps 4 vec4 partial sums (summed at the end), so
// the loop runs K/8 times per invocation (K ≤ 524,280 stays under lavapipe's ~65,535 iterations).
//
// Bindings: 0 uniform Params (the register kernel's: matmul_register.wgsl); 1 a: array<vec4f> (read);
//           2 b: array<vec4f> (read); 3 c: array<f32> (read_write).
// Layout:   row-major, batch-major, A [M, K] and B [N, K] (B transposed: nn.Linear's weight) as vec4 rows of
//           lda4 = ldb4 vec4s (K rounded up to a multiple of 4, the padding zero); for batch z of this dispatch
//           A = a[offA4 + z·strideA4 ...], B = b[offB4 + z·strideB4 ...] (strideB4 = 0 shares B),
//           C = c[offC + z·strideC ...]: [M, N], f32, unpadded.
// Dispatch: (ceil(N / 256), M rows, batches), or part of it: invocation lid.x of workgroup (x, y, z) computes
//           row mOff + y and columns nOff + 256·x + 4·lid.x .. + 3 of batch z. Rows of B past N are clamped
//           (their sums are not stored); a vec4 step past lda4 reads zeros (A's padding past K).
// Params.accumulate ≠ 0: C += alpha·A·Bᵀ instead of C = alpha·A·Bᵀ.

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

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

fn put(o: u32, n: u32, v: f32) {
  if (n >= p.N) { return; }
  if (p.accumulate != 0u) {
    c[o] += p.alpha * v;
  } else {
    c[o] = p.alpha * v;
  }
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = p.mOff + wid.y;
  let n = p.nOff + wid.x * 256u + lid.x * 4u;
  let n1 = p.N - 1u;
  let ar = p.offA4 + wid.z * p.strideA4 + m * p.lda4;
  let bz = p.offB4 + wid.z * p.strideB4;
  let b0 = bz + min(n, n1) * p.ldb4;
  let b1 = bz + min(n + 1u, n1) * p.ldb4;
  let b2 = bz + min(n + 2u, n1) * p.ldb4;
  let b3 = bz + min(n + 3u, n1) * p.ldb4;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  let last = p.lda4 - 1u;
  for (var k = 0u; k < p.lda4; k += 2u) {
    // the second vec4 of an odd-length row repeats the last one with A's half zeroed
    let k1 = min(k + 1u, last);
    let x0 = a[ar + k];
    let x1 = select(vec4f(0.0), a[ar + k1], k + 1u <= last);
    s0 = fma(x0, b[b0 + k], fma(x1, b[b0 + k1], s0));
    s1 = fma(x0, b[b1 + k], fma(x1, b[b1 + k1], s1));
    s2 = fma(x0, b[b2 + k], fma(x1, b[b2 + k1], s2));
    s3 = fma(x0, b[b3 + k], fma(x1, b[b3 + k1], s3));
  }
  if (m >= p.M) { return; }
  let o = p.offC + wid.z * p.strideC + m * p.N + n;
  let one = vec4f(1.0);
  put(o, n, dot(s0, one));
  put(o + 1u, n + 1u, dot(s1, one));
  put(o + 2u, n + 2u, dot(s2, one));
  put(o + 3u, n + 3u, dot(s3, one));
}
