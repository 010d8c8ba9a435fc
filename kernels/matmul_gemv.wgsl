// matmul_gemv.wgsl — C = alpha·A·Bᵀ (+ C when accumulating) for few rows of A (decoding: one new token per
// sequence), on CPU adapters (lavapipe/llvmpipe). The register kernel's 16-row blocks would compute 15 wasted
// rows per real one; here every B value loaded feeds one row, and the loads of B (the weights: N·K values, each
// read once per row of A) set the speed.
//
// Each invocation computes 8 consecutive columns n .. n+7 of one row m of C: per step it loads one vec4 of A's
// row (k .. k+3) and one vec4 of each of its 8 rows of B, and keeps 8 vec4 partial sums (summed at the end).
// On llvmpipe every load is a loop over the SIMD lanes, so the kernel does nothing per step but loads and FMAs:
// no clamps or selects in the loop (rows past N are clamped once, before it). Workgroups of 8 invocations (one
// SIMD vector on llvmpipe) spread even a 192-column product over several threads. Against the earlier layout (4
// columns, two vec4s per step with a select, workgroups of 64) it took 0.59–0.74 of the time on the decoding
// products of SmolLM2-135M's layers (N×K 192×576, 576×576, 576×1536) and the same on the memory-bound LM head
// (bench/RESULTS.md). The loop runs lda4 + 1 times per invocation (the host keeps that within lavapipe's loop
// budget: K ≤ ~240,000).
//
// Bindings: 0 uniform Params (the register kernel's: matmul_register.wgsl); 1 a: array<vec4f> (read);
//           2 b: array<vec4f> (read); 3 c: array<f32> (read_write).
// Layout:   row-major, batch-major, A [M, K] and B [N, K] (B transposed: nn.Linear's weight) as vec4 rows of
//           lda4 = ldb4 vec4s (K rounded up to a multiple of 4, the padding zero); for batch z of this dispatch
//           A = a[offA4 + z·strideA4 ...], B = b[offB4 + z·strideB4 ...] (strideB4 = 0 shares B),
//           C = c[offC + z·strideC ...]: [M, N], f32, unpadded.
// Dispatch: (ceil(N / 64), M rows, batches), or part of it: invocation lid.x of workgroup (x, y, z) computes
//           row mOff + y and columns nOff + 64·x + 8·lid.x .. + 7 of batch z. Rows of B past N are clamped
//           (their sums are not stored).
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

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = p.mOff + wid.y;
  let n = p.nOff + wid.x * 64u + lid.x * 8u;
  let n1 = p.N - 1u;
  let ar = p.offA4 + wid.z * p.strideA4 + min(m, p.M - 1u) * p.lda4;
  let bz = p.offB4 + wid.z * p.strideB4;
  let b0 = bz + min(n, n1) * p.ldb4;
  let b1 = bz + min(n + 1u, n1) * p.ldb4;
  let b2 = bz + min(n + 2u, n1) * p.ldb4;
  let b3 = bz + min(n + 3u, n1) * p.ldb4;
  let b4 = bz + min(n + 4u, n1) * p.ldb4;
  let b5 = bz + min(n + 5u, n1) * p.ldb4;
  let b6 = bz + min(n + 6u, n1) * p.ldb4;
  let b7 = bz + min(n + 7u, n1) * p.ldb4;
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  var s4 = vec4f(0.0);
  var s5 = vec4f(0.0);
  var s6 = vec4f(0.0);
  var s7 = vec4f(0.0);
  for (var k = 0u; k < p.lda4; k++) {
    let x = a[ar + k];
    s0 = fma(x, b[b0 + k], s0);
    s1 = fma(x, b[b1 + k], s1);
    s2 = fma(x, b[b2 + k], s2);
    s3 = fma(x, b[b3 + k], s3);
    s4 = fma(x, b[b4 + k], s4);
    s5 = fma(x, b[b5 + k], s5);
    s6 = fma(x, b[b6 + k], s6);
    s7 = fma(x, b[b7 + k], s7);
  }
  if (m >= p.M) { return; }
  let o = p.offC + wid.z * p.strideC + m * p.N + n;
  let one = vec4f(1.0);
  put(o, n, dot(s0, one));
  put(o + 1u, n + 1u, dot(s1, one));
  put(o + 2u, n + 2u, dot(s2, one));
  put(o + 3u, n + 3u, dot(s3, one));
  put(o + 4u, n + 4u, dot(s4, one));
  put(o + 5u, n + 5u, dot(s5, one));
  put(o + 6u, n + 6u, dot(s6, one));
  put(o + 7u, n + 7u, dot(s7, one));
}
