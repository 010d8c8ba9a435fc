// logprob_gather.wgsl — log softmax(logits)[label] for callers that already hold the logits, and its backward.
//
// Entry `forward`:  lse[ROW0 + r] = logsumexp_v z[r, v];  logp[ROW0 + r] = z[r, label] − lse (0 where the label is
//                   `ignore`, NaN where it is outside [0, V)).
// Entry `backward`: out[r, v] = dy[ROW0 + r] · (1[v = label] − exp(z[r, v] − lse[ROW0 + r])), 0 on ignored rows.
// ROW0 is the first row of a row block: the logits (and `out`) may be bound as a byte range of R rows so that
// matrices larger than one storage binding are processed block by block; labels, logp, lse and dy are whole.
//
// Bindings: 0 uniform Params { R, V, ROW0: u32, ignore: i32 };
//           1 z: array<f32> (read) [R, V];   2 labels: array<i32> (read) [N];
//           3 out: array<f32> (read_write) — forward: logp [N]; backward: dLogits [R, V];
//           4 lse: array<f32> (read_write) [N] — written by forward, read by backward;
//           5 dy: array<f32> (read) [N] (backward only).
// Dispatch: forward: one workgroup of 64 per row, grid1d(R, 1) (row = wg.x + wg.y·num_workgroups.x): each
//           invocation takes the max, then Σ exp, of its strided columns (2·V/64 loop iterations: lavapipe stops an
//           invocation after 65535 in all, so V may reach ~2M), then a shared-memory tree merges them.
//           backward: grid1d(R·V, 256), one element per invocation.
// requires: common/grid.wgsl, common/online_softmax.wgsl

struct Params { R: u32, V: u32, ROW0: u32, ignore: i32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;

const WG = 64u;
const LOW = -3.0e38;


@compute @workgroup_size(64)
fn forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.R) { return; }
  let base = r * p.V;
  var m = LOW;
  for (var j = t; j < p.V; j += WG) { m = max(m, z[base + j]); }
  var s = 0.0;
  for (var j = t; j < p.V; j += WG) { s += exp(z[base + j] - m); }
  // the row's (max, sum) from the invocations' (finite m: LOW bounds it, so the merge is max and rescale)
  let row = workgroup_softmax(t, vec2f(m, s));
  if (t != 0u) { return; }
  let n = p.ROW0 + r;
  let l = row.x + log(row.y);
  lse[n] = l;
  let lab = labels[n];
  if (lab == p.ignore) {
    out[n] = 0.0;
  } else if (lab < 0 || lab >= i32(p.V)) {
    let nan_bits = 0x7fc00000u; // a let, never a const-expression: WGSL allows no NaN const-expression
    out[n] = bitcast<f32>(nan_bits);
  } else {
    out[n] = z[base + u32(lab)] - l;
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.R * p.V) { return; }
  let r = i / p.V;
  let v = i - r * p.V;
  let n = p.ROW0 + r;
  let lab = labels[n];
  var d = 0.0;
  if (lab != p.ignore) {
    d = dy[n] * (select(0.0, 1.0, i32(v) == lab) - exp(z[i] - lse[n]));
  }
  out[i] = d;
}
