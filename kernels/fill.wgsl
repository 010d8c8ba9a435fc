// fill.wgsl — writes one value into every element of a tensor.
//
// Bindings: 0 uniform Params { n: u32, value: f32 }; 1 out: array<f32> (read_write), n elements.
// Layout:   flat, contiguous.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256 handles out[i].
// requires: common/grid.wgsl

struct Params { n: u32, value: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = p.value;
}
