// accumulate_inplace.wgsl — acc[i] += b[i]: adds a gradient into an existing .grad buffer without a new tensor.
//
// Bindings: 0 uniform Params { n: u32 }; 1 acc: array<f32> (read_write); 2 b: array<f32> (read).
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  acc[i] = acc[i] + b[i];
}
