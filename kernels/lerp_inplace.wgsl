// lerp_inplace.wgsl — dst[i] = (1 − alpha)·dst[i] + alpha·src[i], in place (TR-DPO's reference update).
//
// Bindings: 0 uniform Params { n: u32, alpha: f32 }; 1 dst: array<f32> (read_write); 2 src: array<f32> (read).
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32, alpha: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  dst[i] = (1.0 - p.alpha) * dst[i] + p.alpha * src[i];
}
