// swiglu_cat.wgsl — swiglu.wgsl over the joined gate/up projection of a Llama MLP (`linearCat` of gate_proj and
// up_proj): y [rows, I] = silu(g)·u where row r of gu [rows, 2·I] holds g = gu[r, 0 .. I) and u = gu[r, I .. 2I);
// `grad` writes both gradients into one dgu [rows, 2·I] of the same layout (what the joined projection's backward
// reads as one dY). The expressions are swiglu.wgsl's (the same sigmoid through exp(−|g|)), so the values are
// identical:   du = dy·silu(g),   dg = dy·u·σ(g)·(1 + g·(1 − σ(g))).
//
// Bindings: 0 uniform Params { n: u32, I: u32 } (n = rows·I); 1 gu: array<f32> (read) [rows, 2·I];
//           2 out: array<f32> (read_write): y [rows, I] (`main`) or dgu [rows, 2·I] (`grad`);
//           3 dy: array<f32> (read; `grad` only) [rows, I].
// Layout:   row-major, contiguous.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y · nwg.x · 256 handles element (r, j) = (i / I, i % I).
// requires: common/grid.wgsl, common/swiglu_math.wgsl

struct Params { n: u32, I: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let r = i / p.I;
  let gi = i + r * p.I; // r·2I + j
  out[i] = swiglu_value(gu[gi], gu[gi + p.I]);
}

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let r = i / p.I;
  let gi = i + r * p.I;
  let dgu = swiglu_grads(gu[gi], gu[gi + p.I], dy[i]);
  out[gi + p.I] = dgu.y;
  out[gi] = dgu.x;
}
