// matmul_pad.wgsl — copies rows of length `cols` into rows of length `ld` (≥ cols), zero-filling the tail of
// each row: how matmul's register-tiled kernel gets operands whose contiguous axis is a multiple of 4.
//
// Bindings: 0 uniform Params { n, cols, ld, srcOff, dstOff }; 1 src: array<f32> (read);
//           2 dst: array<f32> (read_write).
// Layout:   src row r = src[srcOff + r·cols .. + cols); dst row r = dst[dstOff + r·ld .. + ld); n = rows·ld.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y · num_workgroups.x · 256 writes dst[dstOff + i].
// requires: common/grid.wgsl

struct Params { n: u32, cols: u32, ld: u32, srcOff: u32, dstOff: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let r = i / p.ld;
  let j = i % p.ld;
  var v = 0.0;
  if (j < p.cols) { v = src[p.srcOff + r * p.cols + j]; }
  dst[p.dstOff + i] = v;
}
