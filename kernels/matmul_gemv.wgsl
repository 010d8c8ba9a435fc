// matmul_gemv.wgsl — C = alpha·A·Bᵀ (+ C when accumulating) for few rows of A (decoding: one new token per
// sequence), on CPU adapters (lavapipe/llvmpipe). The register kernel's 16-row blocks would compute 15 wasted
// rows per real one; here every B value loaded feeds one row, and the loads of B (the weights: N·K values, each
// read once per row of A) set the speed.
//
// Each invocation computes 8 consecutive columns n .. n+7 of one row m of C: per step it loads one vec4 of A's
// row (k .. k+3) and one vec4 of each of its 8 rows of B, and keeps 8 vec4 partial sums (summed at the end;
// the loop is common/gemv_row.wgsl's, shared with the fused decoding kernels). On llvmpipe every load is a loop
// over the SIMD lanes, so the kernel does nothing per step but loads and FMAs: no clamps or selects in the loop
// (rows past N are clamped once, before it). Workgroups of 8 invocations (one SIMD vector on llvmpipe) spread
// even a 192-column product over several threads. Against the earlier layout (4 columns, two vec4s per step
// with a select, workgroups of 64) it took 0.59–0.74 of the time on the decoding products of SmolLM2-135M's
// layers (N×K 192×576, 576×576, 576×1536) and the same on the memory-bound LM head (bench/RESULTS.md). The
// loop runs lda4 + 1 times per invocation (the host keeps that within lavapipe's loop budget: K ≤ ~240,000).
//
// Bindings: 0 uniform Params (common/matmul_vec4_params.wgsl, with the bindings); 1 a: array<vec4f> (read);
//           2 b: array<vec4f> (read); 3 c: array<f32> (read_write).
// Layout:   row-major, batch-major, A [M, K] and B [N, K] (B transposed: nn.Linear's weight) as vec4 rows of
//           lda4 = ldb4 vec4s (K rounded up to a multiple of 4, the padding zero); for batch z of this dispatch
//           A = a[offA4 + z·strideA4 ...], B = b[offB4 + z·strideB4 ...] (strideB4 = 0 shares B),
//           C = c[offC + z·strideC ...]: [M, N], f32, unpadded.
// Dispatch: (ceil(N / 64), M rows, batches), or part of it: invocation lid.x of workgroup (x, y, z) computes
//           row mOff + y and columns nOff + 64·x + 8·lid.x .. + 7 of batch z. Rows of B past N are clamped
//           (their sums are not stored).
// Params.accumulate ≠ 0: C += alpha·A·Bᵀ instead of C = alpha·A·Bᵀ.
// requires: common/gemv_row.wgsl, common/matmul_vec4_params.wgsl

fn put(o: u32, n: u32, v: f32) {
  if (n >= p.N) { return; }
  put1(o, v);
}

// The weights of every sum: b (one product).
fn gemv_weight(q: u32, j: u32, i: u32) -> vec4f {
  return b[i];
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = p.mOff + wid.y;
  let n = p.nOff + wid.x * 64u + lid.x * 8u;
  let ar = p.offA4 + wid.z * p.strideA4 + min(m, p.M - 1u) * p.lda4;
  let r = gemv_rows(p.offB4 + wid.z * p.strideB4, n, p.N - 1u, p.ldb4);
  let s = gemv_row(0u, ar, r, p.lda4);
  if (m >= p.M) { return; }
  let o = p.offC + wid.z * p.strideC + m * p.N + n;
  put(o, n, gemv_total(s[0]));
  put(o + 1u, n + 1u, gemv_total(s[1]));
  put(o + 2u, n + 2u, gemv_total(s[2]));
  put(o + 3u, n + 3u, gemv_total(s[3]));
  put(o + 4u, n + 4u, gemv_total(s[4]));
  put(o + 5u, n + 5u, gemv_total(s[5]));
  put(o + 6u, n + 6u, gemv_total(s[6]));
  put(o + 7u, n + 7u, gemv_total(s[7]));
}
