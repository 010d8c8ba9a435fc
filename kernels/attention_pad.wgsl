// attention_pad.wgsl — copies rows between head dim D and a padded head dim DP ≥ D (a multiple of 4), so the
// attention kernels can read whole vec4s: `pad` writes zeros in columns D..DP−1, `unpad` drops them.
//
// Bindings: 0 uniform Params { n: u32 (elements written), D: u32, DP: u32 };
//           1 x   (read):       pad: [rows, D];  unpad: [rows, DP];
//           2 out (read_write): pad: [rows, DP]; unpad: [rows, D].
// Layout:   contiguous rows; n = rows·DP for pad, rows·D for unpad.
// Dispatch: grid1d(n, 256); element e = gid.x + gid.y · nwg.x · 256.
// requires: common/grid.wgsl

struct Params {
  n: u32,
  D: u32,
  DP: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = grid1d_index(gid, nwg, 256u);
  if (e >= p.n) {
    return;
  }
  let r = e / p.DP;
  let d = e % p.DP;
  var val = 0.0;
  if (d < p.D) {
    val = x[r * p.D + d];
  }
  out[e] = val;
}

@compute @workgroup_size(256)
fn unpad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = grid1d_index(gid, nwg, 256u);
  if (e >= p.n) {
    return;
  }
  out[e] = x[(e / p.D) * p.DP + e % p.D];
}
