// swiglu.wgsl — the gated MLP activation of Llama-family models, y = silu(g)·u = g·σ(g)·u, and its backward:
//   du = dy·silu(g),   dg = dy·u·σ(g)·(1 + g·(1 − σ(g))).
// One op instead of silu then mul: the activated gate silu(g) is never stored (backward recomputes σ(g)), so the
// forward keeps g and u only, and backward is one pass writing both gradients.
//
// Bindings: 0 uniform Params { n: u32 }; 1 g: array<f32> (read); 2 u: array<f32> (read);
//           3 out: array<f32> (read_write): y (`main`) or dg (`grad`);
//           4 dy: array<f32> (read; `grad` only); 5 du: array<f32> (read_write; `grad` only).
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// σ is evaluated through exp(−|g|), which never overflows.
// requires: common/grid.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> du: array<f32>;

fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, v >= 0.0);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let x = g[i];
  out[i] = x * sigmoid(x) * u[i];
}

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let x = g[i];
  let s = sigmoid(x);
  let d = dy[i];
  du[i] = d * x * s;
  out[i] = d * u[i] * s * (1.0 + x * (1.0 - s));
}
