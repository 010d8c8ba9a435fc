// layernorm.wgsl — LayerNorm over the last dimension (GPT-2; PyTorch semantics, biased variance, f32):
//   y[n, c] = (x[n, c] − mean[n]) · rstd[n] · w[c] + b[c],
//   mean[n] = Σ_c x / C,   rstd[n] = 1 / sqrt(Σ_c (x − mean)² / C + eps)   (two passes over the row).
// Backward, with x̂ = (x − mean)·rstd and g = dy·w:
//   dx[n, c] = rstd · (g − Σ_c' g / C − x̂ · Σ_c' g·x̂ / C)
//   dw[c] = Σ_n dy·x̂,   db[c] = Σ_n dy   (per-chunk partials here, summed in chunk order by norm_colsum.wgsl)
//
// Bindings: 0 uniform Params { N: u32, C: u32, eps: f32, rowsPerChunk: u32 };
//           1 x: array<f32> (read) [N, C];  2 w: array<f32> (read) [C];  3 b: array<f32> (read) [C];
//           4 mean: array<f32> (read_write) [N];  5 rstd: array<f32> (read_write) [N]
//             (written by `forward`, read by the backward entries);
//           6 out: array<f32> (read_write) — `forward`: y [N, C]; `backward_dx`: dx [N, C];
//             `backward_dwdb_partial`: partial [nChunks, 2C], row k = [dw partial (C) | db partial (C)];
//           7 dy: array<f32> (read) [N, C] — backward entries only (`forward` binds 1..6; b is bound, unused,
//             by the backward entries).
// Layout:   row-major, contiguous; row n of x starts at n·C.
// Dispatch: `forward`, `backward_dx`: one workgroup of WG invocations (override, a power of two ≤ 256) per row,
//             row = wid.x + wid.y · nwg.x (grid1d(N, 1)); strided loads, fixed-shape tree reductions.
//           `forward_rows`, `backward_dx_rows` (CPU adapters, as in rmsnorm.wgsl): workgroups of 64, one row per
//             invocation, row = gid.x + gid.y · nwg.x · 64 (grid1d(N, 64)); blocked sums (32 columns, then the
//             blocks; LayerNorm's mean of rows far from 0 needs it); about 3·C loop iterations (C ≤ 16384 for
//             lavapipe's limit).
//           `backward_dwdb_partial`: workgroup_size 64 over columns; workgroups [ceil(C / 64), nChunks];
//             invocation (c, k) sums rows [k·rowsPerChunk, min(N, (k+1)·rowsPerChunk)) in order.
// requires: common/grid.wgsl, common/workgroup_reduce.wgsl

struct Params { N: u32, C: u32, eps: f32, rowsPerChunk: u32 }

override WG: u32 = 64u;
// The `*_rows` entries' summation block.
const BLOCK: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  let inv_c = 1.0 / f32(p.C);
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    s += x[base + c];
  }
  let m = workgroup_sum2(lid, vec2f(s, 0.0)).x * inv_c;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let d = x[base + c] - m;
    ss += d * d;
  }
  let r = inverseSqrt(workgroup_sum2(lid, vec2f(ss, 0.0)).x * inv_c + p.eps);
  if (lid == 0u) {
    mean[row] = m;
    rstd[row] = r;
  }
  for (var c = lid; c < p.C; c += WG) {
    out[base + c] = (x[base + c] - m) * r * w[c] + b[c];
  }
}

@compute @workgroup_size(WG)
fn backward_dx(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  let m = mean[row];
  let r = rstd[row];
  var s = vec2f(0.0);
  for (var c = lid; c < p.C; c += WG) {
    let g = dy[base + c] * w[c];
    let xh = (x[base + c] - m) * r;
    s += vec2f(g, g * xh);
  }
  let tot = workgroup_sum2(lid, s) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    let g = dy[base + c] * w[c];
    let xh = (x[base + c] - m) * r;
    out[base + c] = r * (g - tot.x - xh * tot.y);
  }
}

@compute @workgroup_size(64)
fn forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = grid1d_index(gid, nwg, 64u);
  if (row >= p.N) { return; }
  let base = row * p.C;
  let inv_c = 1.0 / f32(p.C);
  // blocked sums (blocks of BLOCK, then the block sums): rounding error grows with BLOCK + C / BLOCK, not C
  var s = 0.0;
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = 0.0;
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      part += x[base + c];
    }
    s += part;
  }
  let m = s * inv_c;
  var ss = 0.0;
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = 0.0;
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      let d = x[base + c] - m;
      part += d * d;
    }
    ss += part;
  }
  let r = inverseSqrt(ss * inv_c + p.eps);
  mean[row] = m;
  rstd[row] = r;
  for (var c = 0u; c < p.C; c++) {
    out[base + c] = (x[base + c] - m) * r * w[c] + b[c];
  }
}

@compute @workgroup_size(64)
fn backward_dx_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = grid1d_index(gid, nwg, 64u);
  if (row >= p.N) { return; }
  let base = row * p.C;
  let m = mean[row];
  let r = rstd[row];
  var s = vec2f(0.0);
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = vec2f(0.0);
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      let g = dy[base + c] * w[c];
      let xh = (x[base + c] - m) * r;
      part += vec2f(g, g * xh);
    }
    s += part;
  }
  let tot = s / f32(p.C);
  for (var c = 0u; c < p.C; c++) {
    let g = dy[base + c] * w[c];
    let xh = (x[base + c] - m) * r;
    out[base + c] = r * (g - tot.x - xh * tot.y);
  }
}

@compute @workgroup_size(64)
fn backward_dwdb_partial(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let k = gid.y;
  if (c >= p.C) { return; }
  let r0 = k * p.rowsPerChunk;
  let r1 = min(p.N, r0 + p.rowsPerChunk);
  var dw = 0.0;
  var db = 0.0;
  for (var n = r0; n < r1; n++) {
    let g = dy[n * p.C + c];
    dw += g * ((x[n * p.C + c] - mean[n]) * rstd[n]);
    db += g;
  }
  out[k * 2u * p.C + c] = dw;
  out[k * 2u * p.C + p.C + c] = db;
}
