// reduce.wgsl — sum and max over rows: the row reductions (axis -1) and each pass of a full reduction.
//
// Bindings: 0 uniform Params { rows: u32, L: u32, n: u32, scale: f32, mode: u32 };
//           1 x: array<f32> (read); 2 out: array<f32> (read_write), one value per row;
//           3 idx_out: array<i32> (read_write), one index per row (max entries only);
//           4 idx_in: array<i32> (read), indices of the previous pass's values (max entries only; a one-element
//             placeholder when mode ≠ 2).
// Layout:   row r covers x[r*L .. min((r+1)*L, n)). A row reduction has n = rows*L. A pass of a full reduction
//           views the flat input as ceil(n/L) chunks of L elements (the last one may be short).
//           sum: out[r] = scale * Σ row.  max: out[r] = the largest value, idx_out[r] = the index of its FIRST
//           occurrence: mode 0 = within the row (k), 1 = flat index r*L + k, 2 = idx_in[r*L + k] (later passes).
// Order:    fixed for a given (rows, L, n, WG): *_thread sums its row in blocks of 64 (block sums then added in
//           order); *_wg: each invocation sums a strided subset in increasing order, then a shared-memory tree
//           combines the partials. No atomics, so results are bit-for-bit reproducible.
// Dispatch: sum_thread / max_thread: one invocation per row (short rows), workgroup 64, grid1d(rows, 64):
//             r = gid.x + gid.y * nwg.x * 64.
//           sum_wg / max_wg: one workgroup of WG invocations per row (WG: override, a power of two ≤ 256),
//             grid1d(rows, 1): r = wid.x + wid.y * nwg.x.
// requires: common/neg_inf.wgsl, common/grid.wgsl, common/workgroup_reduce.wgsl

struct Params { rows: u32, L: u32, n: u32, scale: f32, mode: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx_out: array<i32>;
@group(0) @binding(4) var<storage, read> idx_in: array<i32>;

override WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> sh_v: array<f32, 256>;
var<workgroup> sh_k: array<u32, 256>;

fn max_index(r: u32, start: u32, k: u32) -> i32 {
  if (p.mode == 0u) { return i32(k - start); }
  if (p.mode == 1u) { return i32(k); }
  return idx_in[k];
}

// (v2, k2) beats (v1, k1) when larger, or equal with a smaller index (first occurrence wins).
fn better(v1: f32, k1: u32, v2: f32, k2: u32) -> bool {
  return v2 > v1 || (v2 == v1 && k2 < k1);
}

@compute @workgroup_size(64)
fn sum_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) { return; }
  let start = r * p.L;
  let end = min(start + p.L, p.n);
  // blocks of 64 summed separately, then added: rounding grows with L/64 + 64 rather than L
  var s = 0.0;
  for (var b = start; b < end; b += 64u) {
    var part = 0.0;
    for (var k = b; k < min(b + 64u, end); k++) { part += x[k]; }
    s += part;
  }
  out[r] = s * p.scale;
}

@compute @workgroup_size(64)
fn max_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) { return; }
  let start = r * p.L;
  let end = min(start + p.L, p.n);
  var best = x[start];
  var bk = start;
  for (var k = start + 1u; k < end; k++) {
    let v = x[k];
    if (v > best) {
      best = v;
      bk = k;
    }
  }
  out[r] = best;
  idx_out[r] = max_index(r, start, bk);
}

@compute @workgroup_size(WG)
fn sum_wg(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let start = r * p.L;
  let end = min(start + p.L, p.n);
  var s = 0.0;
  for (var k = start + lid; k < end; k += WG) { s += x[k]; }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) { out[r] = total * p.scale; }
}

@compute @workgroup_size(WG)
fn max_wg(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let start = r * p.L;
  let end = min(start + p.L, p.n);
  var best = neg_inf();
  var bk = NONE;
  let first = start + lid;
  if (first < end) {
    best = x[first];
    bk = first;
  }
  for (var k = first + WG; k < end; k += WG) {
    let v = x[k];
    if (v > best) {
      best = v;
      bk = k;
    }
  }
  sh_v[lid] = best;
  sh_k[lid] = bk;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      let v2 = sh_v[lid + h];
      let k2 = sh_k[lid + h];
      if (better(sh_v[lid], sh_k[lid], v2, k2)) {
        sh_v[lid] = v2;
        sh_k[lid] = k2;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[r] = sh_v[0];
    idx_out[r] = max_index(r, start, sh_k[0]);
  }
}
