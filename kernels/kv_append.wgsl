// kv_append.wgsl — writes positions of keys (or values) into a KV cache buffer that has room to grow: the new
// positions of a decoding step at the end of the cached ones, or the cached positions into a larger buffer.
//
// Bindings: 0 uniform Params (below); 1 src: array<f32> (read) [B, H, src_T, D];
//           2 dst: array<f32> (read_write) [B, H, dst_T, D].
// Layout:   contiguous row-major; positions 0 .. count−1 of every (b, h) of src go to positions
//           t0 .. t0 + count − 1 of the same (b, h) of dst; n = B·H·count·D elements are written.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256 writes one element.
// requires: common/grid.wgsl

struct Params { n: u32, D: u32, count: u32, src_T: u32, dst_T: u32, t0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let d = i % p.D;
  let t = (i / p.D) % p.count;
  let bh = i / (p.D * p.count);
  dst[(bh * p.dst_T + p.t0 + t) * p.D + d] = src[(bh * p.src_T + t) * p.D + d];
}
