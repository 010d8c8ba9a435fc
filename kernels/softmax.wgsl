// softmax.wgsl — softmax / log-softmax over the last axis, numerically stable (the row maximum is subtracted).
//
// Bindings: 0 uniform Params { rows: u32, C: u32 }; 1 x: array<f32> (read); 2 y: array<f32> (read_write).
// Layout:   x and y are [rows, C] row-major.
// Override: LOG (bool): false → y = exp(x − m) / s; true → y = x − m − log(s), where m = max of the row and
//           s = Σ exp(x − m).
// Masking:  -Infinity entries get y = 0 (softmax) / -Infinity (log-softmax). A row that is entirely -Infinity
//           gives all zeros (softmax) / all -Infinity (log-softmax), never NaN. -Infinity is recognised by its bit
//           pattern, so the result does not depend on the compiler's treatment of infinities in arithmetic, and
//           written from a `let` holding that pattern (WGSL allows no infinite const-expression).
// Dispatch: forward_thread: one invocation per row (short rows), workgroup 64, grid1d(rows, 64):
//             r = gid.x + gid.y * nwg.x * 64.
//           forward_wg: one workgroup of WG (override, power of two ≤ 256) invocations per row,
//             grid1d(rows, 1): r = wid.x + wid.y * nwg.x. Each invocation keeps an online (max, sum) over a
//             strided subset; a shared-memory tree merges them; a second sweep writes y (x is read twice).
// requires: common/neg_inf.wgsl, common/grid.wgsl, common/online_softmax.wgsl

struct Params { rows: u32, C: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 256u;
override LOG: bool = false;

// The output for input v given the row's (m, s).
fn emit(v: f32, ms: vec2f, log_s: f32) -> f32 {
  if (LOG) {
    if (is_neg_inf(v) || is_neg_inf(ms.x)) { return neg_inf(); }
    return (v - ms.x) - log_s;
  }
  if (is_neg_inf(v) || is_neg_inf(ms.x)) { return 0.0; }
  return exp(v - ms.x) / ms.y;
}

@compute @workgroup_size(64)
fn forward_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) { return; }
  let start = r * p.C;
  let end = start + p.C;
  var m = neg_inf();
  for (var k = start; k < end; k++) {
    let v = x[k];
    if (!is_neg_inf(v) && (is_neg_inf(m) || v > m)) { m = v; }
  }
  var s = 0.0;
  if (!is_neg_inf(m)) {
    // blocks of 64 summed separately, then added (rounding grows with C/64 + 64 rather than C)
    for (var b = start; b < end; b += 64u) {
      var part = 0.0;
      for (var k = b; k < min(b + 64u, end); k++) {
        let v = x[k];
        if (!is_neg_inf(v)) { part += exp(v - m); }
      }
      s += part;
    }
  }
  let ms = vec2f(m, s);
  let log_s = log(s);
  for (var k = start; k < end; k++) { y[k] = emit(x[k], ms, log_s); }
}

@compute @workgroup_size(WG)
fn forward_wg(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let start = r * p.C;
  let end = start + p.C;
  var ms = vec2f(neg_inf(), 0.0);
  for (var k = start + lid; k < end; k += WG) { ms = softmax_push(ms, x[k]); }
  let row = workgroup_softmax(lid, ms);
  let log_s = log(row.y);
  for (var k = start + lid; k < end; k += WG) { y[k] = emit(x[k], row, log_s); }
}
