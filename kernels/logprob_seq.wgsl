// logprob_seq.wgsl — masked, scaled per-row sums of per-token log-probs (sequence log-probs, cross-entropy).
//
// Entry `forward`:  out[b] = scale[b] · Σ_t x[b, t] · 1[labels[b, t] ≠ ignore]
// Entry `backward`: out[b, t] = x[b] · scale[b] · 1[labels[b, t] ≠ ignore]      (x = the gradient dy [B])
//
// Bindings: 0 uniform Params { B, T: u32, ignore: i32 };
//           1 x: array<f32> (read) — forward: token log-probs [B, T]; backward: dy [B];
//           2 labels: array<i32> (read) [B, T] — aligned with x (already shifted, see sequenceLogps);
//           3 scale: array<f32> (read) [B] — 1 for sums, 1/count for means, −1/count for cross-entropy;
//           4 out: array<f32> (read_write) — forward: [B]; backward: [B, T].
// Dispatch: forward: one workgroup of 64 per row, grid1d(B, 1) (b = wg.x + wg.y·num_workgroups.x), strided
//           partial sums then a shared-memory tree; backward: grid1d(B·T, 256), one element per invocation.
// requires: common/grid.wgsl

struct Params { B: u32, T: u32, ignore: i32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG = 64u;
var<workgroup> acc: array<f32, WG>;

@compute @workgroup_size(64)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.B) { return; }
  var s = 0.0;
  for (var j = t; j < p.T; j += WG) {
    let i = b * p.T + j;
    if (labels[i] != p.ignore) { s += x[i]; }
  }
  acc[t] = s;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st >>= 1u) {
    if (t < st) { acc[t] += acc[t + st]; }
    workgroupBarrier();
  }
  if (t == 0u) { out[b] = scale[b] * acc[0]; }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.B * p.T) { return; }
  let b = i / p.T;
  out[i] = select(0.0, x[b] * scale[b], labels[i] != p.ignore);
}
