// matmul_gemv_swiglu.wgsl — a Llama MLP's gate and up projections of few rows and their SwiGLU in one row kernel
// (decoding: one dispatch instead of three): out = silu(a·gᵀ) · (a·uᵀ), silu(x) = x·σ(x). Each product is
// computed as matmul_gemv.wgsl computes it with alpha = 1 (vec4 loads of a and of the weight rows, a vec4
// partial sum per column reduced by dot(s, 1) at the end) and the activation as swiglu.wgsl does (σ through
// exp(−|x|)), so the values are identical to matmul, matmul, swiglu. Each invocation computes 4 columns of both
// products (8 vec4 sums, as many as matmul_gemv.wgsl keeps); workgroups of 8. The loop runs lda4 times per
// invocation (the host keeps that within lavapipe's loop budget).
//
// Bindings: 0 uniform Params { M: u32, N: u32, lda4: u32 }; 1 a: array<vec4f> (read) [M, K];
//           2 g, 3 u: array<vec4f> (read) [N, K] (gate_proj and up_proj weights);
//           4 out: array<f32> (read_write) [M, N].
// Layout:   row-major, K a multiple of 4 (lda4 = K / 4 vec4s per row), all offsets 0.
// Dispatch: (ceil(N / 32), M, 1): invocation lid.x of workgroup (x, y) computes row y and columns
//           32·x + 4·lid.x .. + 3 (rows of g and u past N are clamped and their results not stored).

struct Params { M: u32, N: u32, lda4: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read> u: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, v >= 0.0);
}

fn put(o: u32, n: u32, gs: vec4f, us: vec4f) {
  if (n >= p.N) { return; }
  let one = vec4f(1.0);
  let x = dot(gs, one);
  out[o] = x * sigmoid(x) * dot(us, one);
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m = wid.y;
  let n = wid.x * 32u + lid.x * 4u;
  let n1 = p.N - 1u;
  let ar = min(m, p.M - 1u) * p.lda4;
  let r0 = min(n, n1) * p.lda4;
  let r1 = min(n + 1u, n1) * p.lda4;
  let r2 = min(n + 2u, n1) * p.lda4;
  let r3 = min(n + 3u, n1) * p.lda4;
  var g0 = vec4f(0.0);
  var g1 = vec4f(0.0);
  var g2 = vec4f(0.0);
  var g3 = vec4f(0.0);
  var u0 = vec4f(0.0);
  var u1 = vec4f(0.0);
  var u2 = vec4f(0.0);
  var u3 = vec4f(0.0);
  for (var k = 0u; k < p.lda4; k++) {
    let x = a[ar + k];
    g0 = fma(x, g[r0 + k], g0);
    g1 = fma(x, g[r1 + k], g1);
    g2 = fma(x, g[r2 + k], g2);
    g3 = fma(x, g[r3 + k], g3);
    u0 = fma(x, u[r0 + k], u0);
    u1 = fma(x, u[r1 + k], u1);
    u2 = fma(x, u[r2 + k], u2);
    u3 = fma(x, u[r3 + k], u3);
  }
  if (m >= p.M) { return; }
  let o = m * p.N + n;
  put(o, n, g0, u0);
  put(o + 1u, n + 1u, g1, u1);
  put(o + 2u, n + 2u, g2, u2);
  put(o + 3u, n + 3u, g3, u3);
}
