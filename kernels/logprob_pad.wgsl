// logprob_pad.wgsl — column padding for the LM-head kernels, which read C as vec4s: copies a [R, C] matrix to
// [R, CP] (CP = C rounded up to a multiple of 4, zero-filled) and back. Used only when C % 4 ≠ 0.
//
// Entry `pad`:   out[r, c] = c < C ? x[r, c] : 0     (x [R, C] → out [R, CP])
// Entry `unpad`: out[r, c] = x[r, c]                 (x [R, CP] → out [R, C], c < C)
//
// Bindings: 0 uniform Params { R, C, CP: u32 }; 1 x: array<f32> (read); 2 out: array<f32> (read_write).
// Layout:   row-major, contiguous.
// Dispatch: grid1d(R·CP, 256) for pad, grid1d(R·C, 256) for unpad; invocation i = gid.x + gid.y·nwg.x·256.
// requires: common/grid.wgsl

struct Params { R: u32, C: u32, CP: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.R * p.CP) { return; }
  let r = i / p.CP;
  let c = i - r * p.CP;
  out[i] = select(0.0, x[r * p.C + min(c, p.C - 1u)], c < p.C);
}

@compute @workgroup_size(256)
fn unpad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.R * p.C) { return; }
  let r = i / p.C;
  let c = i - r * p.C;
  out[i] = x[r * p.CP + c];
}
