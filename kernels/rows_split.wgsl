// rows_split.wgsl — cuts one contiguous tensor into up to three, end to end (the inverse of rows_cat.wgsl): how
// the fused projections of a Llama layer (src/autograd/ops/linear_cat.ts) hand the gradient of their joined
// weight [N0 + N1 + N2, C] back to q_proj/k_proj/v_proj (or gate_proj/up_proj) one weight each.
//
// Bindings: 0 uniform Params { n0: u32, n1: u32, n2: u32 } (element counts of the parts; n2 = 0 for two parts,
//           whose part 2 binding is then a buffer of its own that is never written);
//           1 cat: array<f32> (read); 2 q0, 3 q1, 4 q2: array<f32> (read_write).
// Layout:   q0 = cat[0 .. n0), q1 = cat[n0 .. n0 + n1), q2 = cat[n0 + n1 .. n0 + n1 + n2), all flat and contiguous.
// Dispatch: grid1d(n0 + n1 + n2, 256): invocation i = gid.x + gid.y · nwg.x · 256 copies element i of cat.
// requires: common/grid.wgsl

struct Params { n0: u32, n1: u32, n2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cat: array<f32>;
@group(0) @binding(2) var<storage, read_write> q0: array<f32>;
@group(0) @binding(3) var<storage, read_write> q1: array<f32>;
@group(0) @binding(4) var<storage, read_write> q2: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  let n01 = p.n0 + p.n1;
  if (i < p.n0) {
    q0[i] = cat[i];
  } else if (i < n01) {
    q1[i - p.n0] = cat[i];
  } else if (i < n01 + p.n2) {
    q2[i - n01] = cat[i];
  }
}
