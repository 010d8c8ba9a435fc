// accumulate.wgsl — out[i] = a[i] + b[i]; the gradient accumulation of autograd (same shapes, no broadcasting).
//
// Bindings: 0 uniform Params { n: u32 }; 1 a: array<f32> (read); 2 b: array<f32> (read);
//           3 out: array<f32> (read_write). `main_inplace` instead adds b into a (binding 1 read_write).
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}
