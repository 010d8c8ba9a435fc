// common/gemv_row.wgsl — the row kernels' product of one row of A with 8 rows of weights (shared;
// `// requires: common/gemv_row.wgsl`): matmul_gemv, matmul_gemv_multi, matmul_gemv_swiglu.
//
// Per step k an invocation loads one vec4 of A's row and one vec4 of each of its 8 weight rows and keeps 8 vec4
// partial sums, s_j = fma(a_k, w_jk, s_j); a column's value is dot(s_j, 1) at the end. On llvmpipe every load is
// a loop over the SIMD lanes, so the loop holds nothing but loads and FMAs (rows past the last are clamped
// before it, in gemv_rows). The loop runs `len4` times.
//
// The including kernel declares `a: array<vec4f>` (A) and
//   fn gemv_weight(q: u32, j: u32, i: u32) -> vec4f
// giving vec4 i of the weights that sum j of product q reads. WGSL cannot pass a storage buffer to a function
// (naga rejects storage pointer arguments), so the kernel picks the buffer there by q and j; every call passes
// constants for both (gemv_row's j, the kernel's q), so once the functions are inlined the choice is made at
// compile time and the loop loads only the buffer it reads.

// Where rows n .. n + 7 of a matrix of ld4 vec4s per row start (base + row·ld4), rows past `last` clamped to it.
fn gemv_rows(base: u32, n: u32, last: u32, ld4: u32) -> array<u32, 8> {
  return array<u32, 8>(
    base + min(n, last) * ld4,
    base + min(n + 1u, last) * ld4,
    base + min(n + 2u, last) * ld4,
    base + min(n + 3u, last) * ld4,
    base + min(n + 4u, last) * ld4,
    base + min(n + 5u, last) * ld4,
    base + min(n + 6u, last) * ld4,
    base + min(n + 7u, last) * ld4,
  );
}

// The 8 partial sums of product q: A's row from a[ar], weight row j from vec4 r[j] of gemv_weight(q, j, ·),
// len4 vec4s each.
fn gemv_row(q: u32, ar: u32, r: array<u32, 8>, len4: u32) -> array<vec4f, 8> {
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  var s4 = vec4f(0.0);
  var s5 = vec4f(0.0);
  var s6 = vec4f(0.0);
  var s7 = vec4f(0.0);
  for (var k = 0u; k < len4; k++) {
    let x = a[ar + k];
    s0 = fma(x, gemv_weight(q, 0u, r[0] + k), s0);
    s1 = fma(x, gemv_weight(q, 1u, r[1] + k), s1);
    s2 = fma(x, gemv_weight(q, 2u, r[2] + k), s2);
    s3 = fma(x, gemv_weight(q, 3u, r[3] + k), s3);
    s4 = fma(x, gemv_weight(q, 4u, r[4] + k), s4);
    s5 = fma(x, gemv_weight(q, 5u, r[5] + k), s5);
    s6 = fma(x, gemv_weight(q, 6u, r[6] + k), s6);
    s7 = fma(x, gemv_weight(q, 7u, r[7] + k), s7);
  }
  return array<vec4f, 8>(s0, s1, s2, s3, s4, s5, s6, s7);
}

// A partial sum's total: dot(s, 1).
fn gemv_total(s: vec4f) -> f32 {
  return dot(s, vec4f(1.0));
}
