// matmul_gemv_multi.wgsl — one row kernel for up to three products of the same rows: c_i = a·b_iᵀ for i = 0, 1, 2
// (decoding's q, k and v projections of one normalised token: one dispatch instead of three). Each product is
// computed as matmul_gemv.wgsl computes it with alpha = 1 (8 columns of one row per invocation, vec4 loads of a
// and of 8 rows of b_i, 8 vec4 partial sums each reduced by dot(s, 1) at the end; workgroups of 8), so the
// values are identical to three matmul calls on the row kernel. The loop runs lda4 times per invocation (the
// host keeps that within lavapipe's loop budget).
//
// Bindings: 0 uniform Params (below); 1 a: array<vec4f> (read) [M, K]; 2 b0, 3 b1, 4 b2: array<vec4f> (read)
//           [N_i, K] (nn.Linear weights); 5 c0, 6 c1, 7 c2: array<f32> (read_write) [M, N_i].
// Layout:   row-major, K a multiple of 4 (lda4 = K / 4 vec4s per row of a and of each b_i), all offsets 0.
// Dispatch: (X0 + X1 + X2, M, 1) with X_i = ceil(N_i / 64) (X_i = 0 drops product i): workgroup x < X0 computes
//           product 0, X0 ≤ x < X0 + X1 product 1 (x − X0), the rest product 2; invocation lid.x of workgroup
//           (x, y) computes row y and columns 64·x' + 8·lid.x .. + 7 of its product (rows of b_i past N_i are
//           clamped and their sums not stored).

struct Params { M: u32, lda4: u32, N0: u32, N1: u32, N2: u32, X0: u32, X1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b0: array<vec4f>;
@group(0) @binding(3) var<storage, read> b1: array<vec4f>;
@group(0) @binding(4) var<storage, read> b2: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> c0: array<f32>;
@group(0) @binding(6) var<storage, read_write> c1: array<f32>;
@group(0) @binding(7) var<storage, read_write> c2: array<f32>;

// Columns n .. n + 7 of row m of c0 = a·b0ᵀ.
fn seg0(m: u32, n: u32) {
  let n1 = p.N0 - 1u;
  let ar = min(m, p.M - 1u) * p.lda4;
  let r0 = min(n, n1) * p.lda4;
  let r1 = min(n + 1u, n1) * p.lda4;
  let r2 = min(n + 2u, n1) * p.lda4;
  let r3 = min(n + 3u, n1) * p.lda4;
  let r4 = min(n + 4u, n1) * p.lda4;
  let r5 = min(n + 5u, n1) * p.lda4;
  let r6 = min(n + 6u, n1) * p.lda4;
  let r7 = min(n + 7u, n1) * p.lda4;
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
    s0 = fma(x, b0[r0 + k], s0);
    s1 = fma(x, b0[r1 + k], s1);
    s2 = fma(x, b0[r2 + k], s2);
    s3 = fma(x, b0[r3 + k], s3);
    s4 = fma(x, b0[r4 + k], s4);
    s5 = fma(x, b0[r5 + k], s5);
    s6 = fma(x, b0[r6 + k], s6);
    s7 = fma(x, b0[r7 + k], s7);
  }
  if (m >= p.M) { return; }
  let o = m * p.N0 + n;
  let one = vec4f(1.0);
  let s = array<vec4f, 8>(s0, s1, s2, s3, s4, s5, s6, s7);
  for (var j = 0u; j < 8u; j++) {
    if (n + j < p.N0) { c0[o + j] = dot(s[j], one); }
  }
}

// Columns n .. n + 7 of row m of c1 = a·b1ᵀ.
fn seg1(m: u32, n: u32) {
  let n1 = p.N1 - 1u;
  let ar = min(m, p.M - 1u) * p.lda4;
  let r0 = min(n, n1) * p.lda4;
  let r1 = min(n + 1u, n1) * p.lda4;
  let r2 = min(n + 2u, n1) * p.lda4;
  let r3 = min(n + 3u, n1) * p.lda4;
  let r4 = min(n + 4u, n1) * p.lda4;
  let r5 = min(n + 5u, n1) * p.lda4;
  let r6 = min(n + 6u, n1) * p.lda4;
  let r7 = min(n + 7u, n1) * p.lda4;
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
    s0 = fma(x, b1[r0 + k], s0);
    s1 = fma(x, b1[r1 + k], s1);
    s2 = fma(x, b1[r2 + k], s2);
    s3 = fma(x, b1[r3 + k], s3);
    s4 = fma(x, b1[r4 + k], s4);
    s5 = fma(x, b1[r5 + k], s5);
    s6 = fma(x, b1[r6 + k], s6);
    s7 = fma(x, b1[r7 + k], s7);
  }
  if (m >= p.M) { return; }
  let o = m * p.N1 + n;
  let one = vec4f(1.0);
  let s = array<vec4f, 8>(s0, s1, s2, s3, s4, s5, s6, s7);
  for (var j = 0u; j < 8u; j++) {
    if (n + j < p.N1) { c1[o + j] = dot(s[j], one); }
  }
}

// Columns n .. n + 7 of row m of c2 = a·b2ᵀ.
fn seg2(m: u32, n: u32) {
  let n1 = p.N2 - 1u;
  let ar = min(m, p.M - 1u) * p.lda4;
  let r0 = min(n, n1) * p.lda4;
  let r1 = min(n + 1u, n1) * p.lda4;
  let r2 = min(n + 2u, n1) * p.lda4;
  let r3 = min(n + 3u, n1) * p.lda4;
  let r4 = min(n + 4u, n1) * p.lda4;
  let r5 = min(n + 5u, n1) * p.lda4;
  let r6 = min(n + 6u, n1) * p.lda4;
  let r7 = min(n + 7u, n1) * p.lda4;
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
    s0 = fma(x, b2[r0 + k], s0);
    s1 = fma(x, b2[r1 + k], s1);
    s2 = fma(x, b2[r2 + k], s2);
    s3 = fma(x, b2[r3 + k], s3);
    s4 = fma(x, b2[r4 + k], s4);
    s5 = fma(x, b2[r5 + k], s5);
    s6 = fma(x, b2[r6 + k], s6);
    s7 = fma(x, b2[r7 + k], s7);
  }
  if (m >= p.M) { return; }
  let o = m * p.N2 + n;
  let one = vec4f(1.0);
  let s = array<vec4f, 8>(s0, s1, s2, s3, s4, s5, s6, s7);
  for (var j = 0u; j < 8u; j++) {
    if (n + j < p.N2) { c2[o + j] = dot(s[j], one); }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = wid.y;
  if (wid.x < p.X0) {
    seg0(m, wid.x * 64u + lid.x * 8u);
  } else if (wid.x < p.X0 + p.X1) {
    seg1(m, (wid.x - p.X0) * 64u + lid.x * 8u);
  } else {
    seg2(m, (wid.x - p.X0 - p.X1) * 64u + lid.x * 8u);
  }
}
