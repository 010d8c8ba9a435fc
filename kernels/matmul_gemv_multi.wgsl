// matmul_gemv_multi.wgsl — one row kernel for up to three products of the same rows: c_i = a·b_iᵀ for i = 0, 1, 2
// (decoding's q, k and v projections of one normalised token: one dispatch instead of three). Each product is
// computed as matmul_gemv.wgsl computes it with alpha = 1 (8 columns of one row per invocation, vec4 loads of a
// and of 8 rows of b_i, 8 vec4 partial sums each reduced by dot(s, 1) at the end; workgroups of 8), so the
// values are identical to three matmul calls on the row kernel (the loop is common/gemv_row.wgsl's, which
// matmul_gemv.wgsl runs too). The loop runs lda4 times per invocation (the host keeps that within lavapipe's
// loop budget).
//
// Bindings: 0 uniform Params (below); 1 a: array<vec4f> (read) [M, K]; 2 b0, 3 b1, 4 b2: array<vec4f> (read)
//           [N_i, K] (nn.Linear weights); 5 c0, 6 c1, 7 c2: array<f32> (read_write) [M, N_i].
// Layout:   row-major, K a multiple of 4 (lda4 = K / 4 vec4s per row of a and of each b_i), all offsets 0.
// Dispatch: (X0 + X1 + X2, M, 1) with X_i = ceil(N_i / 64) (X_i = 0 drops product i): workgroup x < X0 computes
//           product 0, X0 ≤ x < X0 + X1 product 1 (x − X0), the rest product 2; invocation lid.x of workgroup
//           (x, y) computes row y and columns 64·x' + 8·lid.x .. + 7 of its product (rows of b_i past N_i are
//           clamped and their sums not stored).
// requires: common/gemv_row.wgsl

struct Params { M: u32, lda4: u32, N0: u32, N1: u32, N2: u32, X0: u32, X1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b0: array<vec4f>;
@group(0) @binding(3) var<storage, read> b1: array<vec4f>;
@group(0) @binding(4) var<storage, read> b2: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> c0: array<f32>;
@group(0) @binding(6) var<storage, read_write> c1: array<f32>;
@group(0) @binding(7) var<storage, read_write> c2: array<f32>;

// The weights of product q's sums: b_q (q is a constant at each call, see common/gemv_row.wgsl).
fn gemv_weight(q: u32, j: u32, i: u32) -> vec4f {
  if (q == 0u) { return b0[i]; }
  if (q == 1u) { return b1[i]; }
  return b2[i];
}

// Element i of c_q.
fn put(q: u32, i: u32, v: f32) {
  if (q == 0u) {
    c0[i] = v;
  } else if (q == 1u) {
    c1[i] = v;
  } else {
    c2[i] = v;
  }
}

// Columns n .. n + 7 of row m of c_q = a·b_qᵀ, c_q and b_q having N rows.
fn product(q: u32, m: u32, n: u32, N: u32) {
  let s = gemv_row(q, min(m, p.M - 1u) * p.lda4, gemv_rows(0u, n, N - 1u, p.lda4), p.lda4);
  if (m >= p.M) { return; }
  let o = m * N + n;
  for (var j = 0u; j < 8u; j++) {
    if (n + j < N) { put(q, o + j, gemv_total(s[j])); }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = wid.y;
  if (wid.x < p.X0) {
    product(0u, m, wid.x * 64u + lid.x * 8u, p.N0);
  } else if (wid.x < p.X0 + p.X1) {
    product(1u, m, (wid.x - p.X0) * 64u + lid.x * 8u, p.N1);
  } else {
    product(2u, m, (wid.x - p.X0 - p.X1) * 64u + lid.x * 8u, p.N2);
  }
}
