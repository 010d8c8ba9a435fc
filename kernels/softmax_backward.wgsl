// softmax_backward.wgsl — gradients of softmax / log-softmax over the last axis, from the forward output y.
//
// Bindings: 0 uniform Params { rows: u32, C: u32 }; 1 y: array<f32> (read), the forward output;
//           2 dy: array<f32> (read); 3 dx: array<f32> (read_write).
// Layout:   all [rows, C] row-major.
// Override: LOG (bool): false (softmax) → dx = y ⊙ (dy − Σ dy⊙y);  true (log-softmax) → dx = dy − exp(y)·Σ dy,
//           with exp(-Infinity) taken as exactly 0, so a masked entry of a partly masked row gets dx = dy. A row
//           whose y is entirely -Infinity (all inputs masked: the forward output is a constant) gets dx = 0.
// Dispatch: backward_thread: one invocation per row, workgroup 64, grid1d(rows, 64): r = gid.x + gid.y*nwg.x*64.
//           backward_wg: one workgroup of WG (override, power of two ≤ 256) invocations per row, grid1d(rows, 1):
//             r = wid.x + wid.y * nwg.x; strided partial sums, then a shared-memory tree (fixed order).
// requires: common/neg_inf.wgsl, common/grid.wgsl, common/workgroup_reduce.wgsl

struct Params { rows: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

override WG: u32 = 256u;
override LOG: bool = false;


fn term(k: u32) -> f32 {
  if (LOG) { return dy[k]; }
  return dy[k] * y[k];
}

// live: whether the row has any finite y (log-softmax only; an all -Infinity row gets no gradient).
fn grad(k: u32, s: f32, live: bool) -> f32 {
  let v = y[k];
  if (LOG) {
    if (!live) { return 0.0; }
    if (is_neg_inf(v)) { return dy[k]; }
    return dy[k] - exp(v) * s;
  }
  return v * (dy[k] - s);
}

@compute @workgroup_size(64)
fn backward_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) { return; }
  let start = r * p.C;
  let end = start + p.C;
  var s = 0.0;
  var live = false;
  for (var b = start; b < end; b += 64u) {
    var part = 0.0; // blocks of 64 summed separately, then added
    for (var k = b; k < min(b + 64u, end); k++) {
      part += term(k);
      live = live || !is_neg_inf(y[k]);
    }
    s += part;
  }
  for (var k = start; k < end; k++) { dx[k] = grad(k, s, live); }
}

@compute @workgroup_size(WG)
fn backward_wg(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let start = r * p.C;
  let end = start + p.C;
  var s = 0.0;
  var live = 0u;
  for (var k = start + lid; k < end; k += WG) {
    s += term(k);
    live = live | select(0u, 1u, !is_neg_inf(y[k]));
  }
  // the row's sum, and how many invocations saw an entry that is not -Infinity (exact: at most 256)
  let t = workgroup_sum2(lid, vec2f(s, f32(live)));
  let total = t.x;
  let row_live = t.y != 0.0;
  for (var k = start + lid; k < end; k += WG) { dx[k] = grad(k, total, row_live); }
}
