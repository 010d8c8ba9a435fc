// argmax_rows.wgsl — greedy decoding's pick on the GPU: out[r] = the column of the largest value of row r
// of x [R, V], the first such column on ties, exactly what the host loop
//   best = 0; for v in 1 ..< V: if (x[v] > x[best]) best = v
// returns: a NaN never wins (no comparison with it holds), and a NaN in column 0 keeps 0 (nothing compares
// greater than it). −0 and +0 are equal, so the first of them stays.
//
// A workgroup of 64 invocations reduces one row: invocation i scans columns i, i + 64, … in ascending order with
// the same strict `>` (so it keeps the first column of its largest value), then a tree over workgroup memory
// merges the 64 candidates (the larger value wins; equal values: the smaller column). NaNs are recognised by
// their bits, not by `x != x`, which a compiler may fold away.
//
// Bindings: 0 uniform Params { V: u32 }; 1 x: array<f32> (read) [R, V]; 2 out: array<i32> (read_write) [R].
// Layout:   row-major, contiguous; row r of x starts at r·V.
// Dispatch: (R, 1, 1) workgroups of 64 (R ≤ 65535); each invocation loops ceil(V / 64) times (the host keeps V
//           within lavapipe's loop budget: V ≤ 64 · 65535).

struct Params { V: u32 }

const LANES: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

var<workgroup> best_val: array<f32, 64>;
var<workgroup> best_col: array<u32, 64>;

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Whether candidate (vb, cb) replaces (va, ca); a column of V means "none".
fn better(va: f32, ca: u32, vb: f32, cb: u32) -> bool {
  if (cb == p.V) { return false; }
  if (ca == p.V) { return true; }
  return vb > va || (vb == va && cb < ca);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wid: vec3u) {
  let base = wid.x * p.V;
  var bv = 0.0;
  var bc = p.V;
  for (var v = lane; v < p.V; v += LANES) {
    let xv = x[base + v];
    if (!is_nan(xv) && (bc == p.V || xv > bv)) {
      bv = xv;
      bc = v;
    }
  }
  best_val[lane] = bv;
  best_col[lane] = bc;
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half && better(best_val[lane], best_col[lane], best_val[lane + half], best_col[lane + half])) {
      best_val[lane] = best_val[lane + half];
      best_col[lane] = best_col[lane + half];
    }
    workgroupBarrier();
  }
  if (lane == 0u) {
    var col = best_col[0];
    if (col == p.V || is_nan(x[base])) { col = 0u; }
    out[wid.x] = i32(col);
  }
}
