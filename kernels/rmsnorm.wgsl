// rmsnorm.wgsl — RMSNorm over the last dimension (Llama family, Hugging Face LlamaRMSNorm semantics, f32):
//   y[n, c] = w[c] · (x[n, c] · rstd[n]),   rstd[n] = 1 / sqrt(mean_c(x[n, c]²) + eps).
// Backward:
//   dx[n, c] = rstd·w[c]·dy[n, c] − x[n, c] · rstd³ · (Σ_c' dy·w·x) / C
//   dw[c]    = Σ_n dy[n, c] · x[n, c] · rstd[n]   (two deterministic passes: per-chunk partials here, then
//                                                 norm_colsum.wgsl sums the chunks in order; no atomics)
//
// Bindings: 0 uniform Params { N: u32, C: u32, eps: f32, rowsPerChunk: u32 };
//           1 x: array<f32> (read) [N, C];   2 w: array<f32> (read) [C];
//           3 rstd: array<f32> (read_write) [N] — written by `forward`, read by the backward entries;
//           4 out: array<f32> (read_write) — `forward`: y [N, C]; `backward_dx`: dx [N, C];
//                                             `backward_dw_partial`: partial [nChunks, C];
//           5 dy: array<f32> (read) [N, C] — backward entries only (`forward` binds 1..4).
// Layout:   row-major, contiguous; row n of x starts at n·C.
// Dispatch: `forward`, `backward_dx`: one workgroup of WG invocations (override, a power of two ≤ 256) per row,
//             rows = wid.x + wid.y · nwg.x (grid1d(N, 1) splits past 65535); each invocation strides the row by WG,
//             then a fixed-shape tree reduction in workgroup memory (deterministic).
//           `forward_rows`, `backward_dx_rows` (CPU adapters: lavapipe runs each invocation as one SIMD lane and
//             pays for every workgroup and barrier, so a row per invocation is several times faster): workgroups
//             of 64, one row per invocation, row = gid.x + gid.y · nwg.x · 64 (grid1d(N, 64)); blocked sums (32
//             columns, then the blocks). Each walks its row twice (about 2·C loop iterations: C ≤ 16384 for
//             lavapipe's limit).
//           `backward_dw_partial`: workgroup_size 64 over columns; workgroups [ceil(C / 64), nChunks];
//             invocation (c, k) sums rows [k·rowsPerChunk, min(N, (k+1)·rowsPerChunk)) in order.
// requires: common/grid.wgsl, common/workgroup_reduce.wgsl

struct Params { N: u32, C: u32, eps: f32, rowsPerChunk: u32 }

override WG: u32 = 64u;
// The `*_rows` entries' summation block.
const BLOCK: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c];
    ss += v * v;
  }
  let total = workgroup_sum(lid, ss);
  let r = inverseSqrt(total / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  for (var c = lid; c < p.C; c += WG) {
    out[base + c] = w[c] * (x[base + c] * r);
  }
}

@compute @workgroup_size(WG)
fn backward_dx(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    s += dy[base + c] * w[c] * x[base + c];
  }
  let total = workgroup_sum(lid, s);
  let r = rstd[row];
  let coef = r * r * r * (total / f32(p.C));
  for (var c = lid; c < p.C; c += WG) {
    out[base + c] = r * (w[c] * dy[base + c]) - x[base + c] * coef;
  }
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = grid1d_index(gid, nwg, 64u);
  if (row >= p.N) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = 0.0;
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      let v = x[base + c];
      part += v * v;
    }
    ss += part;
  }
  let r = inverseSqrt(ss / f32(p.C) + p.eps);
  rstd[row] = r;
  for (var c = 0u; c < p.C; c++) {
    out[base + c] = w[c] * (x[base + c] * r);
  }
}

@compute @workgroup_size(64)
fn backward_dx_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = grid1d_index(gid, nwg, 64u);
  if (row >= p.N) { return; }
  let base = row * p.C;
  var s = 0.0;
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = 0.0;
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      part += dy[base + c] * w[c] * x[base + c];
    }
    s += part;
  }
  let r = rstd[row];
  let coef = r * r * r * (s / f32(p.C));
  for (var c = 0u; c < p.C; c++) {
    out[base + c] = r * (w[c] * dy[base + c]) - x[base + c] * coef;
  }
}

@compute @workgroup_size(64)
fn backward_dw_partial(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let k = gid.y;
  if (c >= p.C) { return; }
  let r0 = k * p.rowsPerChunk;
  let r1 = min(p.N, r0 + p.rowsPerChunk);
  var acc = 0.0;
  for (var n = r0; n < r1; n++) {
    acc += dy[n * p.C + c] * (x[n * p.C + c] * rstd[n]);
  }
  out[k * p.C + c] = acc;
}
