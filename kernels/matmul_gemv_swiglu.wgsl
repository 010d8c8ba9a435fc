// matmul_gemv_swiglu.wgsl — a Llama MLP's gate and up projections of few rows and their SwiGLU in one row kernel
// (decoding: one dispatch instead of three): out = silu(a·gᵀ) · (a·uᵀ), silu(x) = x·σ(x). Each product is
// computed as matmul_gemv.wgsl computes it with alpha = 1 (vec4 loads of a and of the weight rows, a vec4
// partial sum per column reduced by dot(s, 1) at the end: the loop is common/gemv_row.wgsl's) and the activation
// as swiglu.wgsl does (σ through exp(−|x|)), so the values are identical to matmul, matmul, swiglu. Each
// invocation computes 4 columns of both products (the row loop's 8 vec4 sums: 4 of g's rows, then the same 4 of
// u's); workgroups of 8. The loop runs lda4 times per invocation (the host keeps that within lavapipe's loop
// budget).
//
// Bindings: 0 uniform Params { M: u32, N: u32, lda4: u32 }; 1 a: array<vec4f> (read) [M, K];
//           2 g, 3 u: array<vec4f> (read) [N, K] (gate_proj and up_proj weights);
//           4 out: array<f32> (read_write) [M, N].
// Layout:   row-major, K a multiple of 4 (lda4 = K / 4 vec4s per row), all offsets 0.
// Dispatch: (ceil(N / 32), M, 1): invocation lid.x of workgroup (x, y) computes row y and columns
//           32·x + 4·lid.x .. + 3 (rows of g and u past N are clamped and their results not stored).
// requires: common/gemv_row.wgsl, common/swiglu_math.wgsl

struct Params { M: u32, N: u32, lda4: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read> u: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Sums 0..3 read g (the gate's columns n .. n + 3), sums 4..7 read u (the up projection's): j is a constant at
// each call (see common/gemv_row.wgsl).
fn gemv_weight(q: u32, j: u32, i: u32) -> vec4f {
  if (j < 4u) { return g[i]; }
  return u[i];
}

fn put(o: u32, n: u32, gs: vec4f, us: vec4f) {
  if (n >= p.N) { return; }
  let x = gemv_total(gs);
  out[o] = swiglu_value(x, gemv_total(us));
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = wid.y;
  let n = wid.x * 32u + lid.x * 4u;
  let r = gemv_rows(0u, n, p.N - 1u, p.lda4);
  // the same 4 rows of g (sums 0..3) and of u (sums 4..7)
  let rows = array<u32, 8>(r[0], r[1], r[2], r[3], r[0], r[1], r[2], r[3]);
  let s = gemv_row(0u, min(m, p.M - 1u) * p.lda4, rows, p.lda4);
  if (m >= p.M) { return; }
  let o = m * p.N + n;
  put(o, n, s[0], s[4]);
  put(o + 1u, n + 1u, s[1], s[5]);
  put(o + 2u, n + 2u, s[2], s[6]);
  put(o + 3u, n + 3u, s[3], s[7]);
}
