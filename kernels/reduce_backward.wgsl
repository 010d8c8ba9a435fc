// reduce_backward.wgsl — gradients of the reductions in reduce.wgsl.
//
// Bindings: 0 uniform Params { n: u32, C: u32, scale: f32 };
//           1 dy: array<f32> (read), one value per row; 2 dx: array<f32> (read_write), n = rows*C elements;
//           3 idx: array<i32> (read), the argmax of each row (within the row) saved by the forward (max_back only).
// Layout:   dx is [rows, C] row-major; a full reduction is one row with C = n.
//           sum_back: dx[i] = scale * dy[i / C]   (scale = 1 for sum, 1/C for mean).
//           max_back: dx[i] = dy[i / C] where i % C is the row's argmax, else 0.
// Dispatch: grid1d(n, 256): i = gid.x + gid.y * nwg.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32, C: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(256)
fn sum_back(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  dx[i] = dy[i / p.C] * p.scale;
}

@compute @workgroup_size(256)
fn max_back(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let r = i / p.C;
  let k = i - r * p.C;
  dx[i] = select(0.0, dy[r], i32(k) == idx[r]);
}
