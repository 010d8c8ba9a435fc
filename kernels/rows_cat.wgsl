// rows_cat.wgsl — joins up to three contiguous tensors end to end: how the fused projections of a Llama layer
// (src/autograd/ops/linear_cat.ts) see q_proj/k_proj/v_proj (or gate_proj/up_proj) as one weight
// [N0 + N1 + N2, C] for one product. rows_split.wgsl is the inverse.
//
// Bindings: 0 uniform Params { n0: u32, n1: u32, n2: u32 } (element counts of the parts; n2 = 0 for two parts,
//           whose part 2 binding is then any buffer, never read);
//           1 p0, 2 p1, 3 p2: array<f32> (read); 4 cat: array<f32> (read_write).
// Layout:   cat[0 .. n0) = part 0, cat[n0 .. n0 + n1) = part 1, cat[n0 + n1 .. n0 + n1 + n2) = part 2, all flat
//           and contiguous (row-major matrices of the same row length join along their rows).
// Dispatch: grid1d(n0 + n1 + n2, 256): invocation i = gid.x + gid.y · nwg.x · 256 copies element i of cat.
// requires: common/grid.wgsl

struct Params { n0: u32, n1: u32, n2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> p0: array<f32>;
@group(0) @binding(2) var<storage, read> p1: array<f32>;
@group(0) @binding(3) var<storage, read> p2: array<f32>;
@group(0) @binding(4) var<storage, read_write> cat: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  let n01 = p.n0 + p.n1;
  if (i < p.n0) {
    cat[i] = p0[i];
  } else if (i < n01) {
    cat[i] = p1[i - p.n0];
  } else if (i < n01 + p.n2) {
    cat[i] = p2[i - n01];
  }
}
