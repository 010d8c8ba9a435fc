// weighted_row_sum.wgsl — out[b] = Σ_t w[b, t]·x[b, t] per row (forward), dx[b, t] = w[b, t]·dy[b] (backward).
// The masked / weighted row sum of every log-prob path (src/autograd/ops/weighted_row_sum.ts): per-token weights
// 0 for unscored positions, 1 for scored ones, 1/count for means, −1/count for cross-entropy, ld_alpha for
// LD-DPO's tail tokens. A weight of 0 skips its position (a non-finite x there does not leak into the sum).
//
// Bindings (forward):  0 uniform Params { B: u32, T: u32, chunk: u32, nc: u32 }; 1 x: array<f32> (read) [B, T];
//                      2 w: array<f32> (read) [B, T]; 3 out: array<f32> (read_write) [B, nc].
// Bindings (backward): 0 uniform Params (as forward; chunk, nc unused); 1 dy: array<f32> (read) [B];
//                      2 w: array<f32> (read) [B, T]; 3 dx: array<f32> (read_write) [B, T].
// Layout:   row-major, contiguous.
// Dispatch: forward grid1d(B·nc, 64): invocation i sums chunk c = i % nc of row b = i / nc, t = c·chunk ..
//           min(T, (c + 1)·chunk) − 1 in order (deterministic). A row longer than one chunk gives nc partial sums,
//           which the host sums by the same entry (weights 1): no invocation loops more than `chunk` times, under
//           lavapipe's silent limit of about 65 535 iterations.
//           backward grid1d(B·T, 256), one invocation per element.
// requires: common/grid.wgsl

struct Params { B: u32, T: u32, chunk: u32, nc: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 64u);
  if (i >= p.B * p.nc) { return; }
  let b = i / p.nc;
  let t0 = (i % p.nc) * p.chunk;
  let t1 = min(p.T, t0 + p.chunk);
  var s = 0.0;
  for (var t = t0; t < t1; t++) {
    let k = b * p.T + t;
    let wk = w[k];
    if (wk != 0.0) { s += wk * src[k]; }
  }
  dst[i] = s;
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.B * p.T) { return; }
  dst[i] = w[i] * src[i / p.T];
}
