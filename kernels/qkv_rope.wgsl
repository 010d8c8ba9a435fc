// qkv_rope.wgsl — a Llama layer's fused q/k/v projection output split into heads, with RoPE on q and k, in one
// dispatch (`forward`), and its backward in one (`backward`): what three permutes and two rope.wgsl dispatches
// did forward, and two rope.wgsl plus three permutes did backward. The rotation is rope.wgsl's (the same
// cos_sin, the same products), so the values are identical; backward rotates by −angle (dir = −1).
// With R the rotary dim (R ≤ D, even) and i < R/2, per head row of D floats:
//   angle = f32(position) · inv_freq[i];  out[i] = x1·cos − x2·dir·sin;  out[i + R/2] = x2·cos + x1·dir·sin;
//   out[j] = x[j] for R ≤ j < D; value heads are copied unrotated.
//
// Bindings: 0 uniform Params (below); 1 pos: array<i32> (read) [B, T]; 2 inv_freq: array<f32> (read) [R/2];
//           `forward`:  3 y: array<f32> (read) [B, T, (H + 2·HKV)·D] (q_proj | k_proj | v_proj per row);
//                       4 q (read_write) [B, H, T, D]; 5 k, 6 v (read_write) [B, HKV, T, D];
//           `backward`: 3 unused (bind any buffer not bound writable, e.g. pos); 4 dq [B, H, T, D], 5 dk, 6 dv
//                       [B, HKV, T, D] (read_write bindings, only read: the forward's q, k, v slots, so that
//                       the module stays within 8 storage bindings); 7 dy: array<f32> (read_write), y's layout.
// Layout:   contiguous row-major. Row ρ of the (b, t, head) rows, ρ = (b·T + t)·(H + 2·HKV) + head: heads
//           0..H−1 are q's, H..H+HKV−1 k's, H+HKV.. v's.
// Dispatch: grid1d(total, 128), total = B·T·(H + 2·HKV)·W, W = R/2 + (D − R): invocation i handles row i / W,
//           slot u = i % W (u < R/2: the pair (u, u + R/2), rotated for q and k, copied for v; else element
//           R + u − R/2, copied).
// requires: common/grid.wgsl, common/rope_cos_sin.wgsl

struct Params { T: u32, H: u32, HKV: u32, D: u32, R: u32, dir: f32, total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pos: array<i32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> dy: array<f32>;

// Where head row ρ's D floats lie: in y (the projections' layout) and in its head tensor, which of q, k, v it
// is (0, 1, 2), and the (b, t) index of its position.
struct Place { yBase: u32, hBase: u32, which: u32, bt: u32 }

fn place(row: u32) -> Place {
  let heads = p.H + 2u * p.HKV;
  let bt = row / heads;
  let head = row - bt * heads;
  let b = bt / p.T;
  let t = bt - b * p.T;
  var which = 0u;
  var hh = head;
  var n = p.H;
  if (head >= p.H + p.HKV) {
    which = 2u;
    hh = head - p.H - p.HKV;
    n = p.HKV;
  } else if (head >= p.H) {
    which = 1u;
    hh = head - p.H;
    n = p.HKV;
  }
  return Place(row * p.D, ((b * n + hh) * p.T + t) * p.D, which, bt);
}

// (x1, x2) rotated by dir · position · inv_freq[u] (rope.wgsl's expressions).
fn rotate(x1: f32, x2: f32, bt: u32, u: u32) -> vec2f {
  let angle = f32(pos[bt]) * inv_freq[u];
  let cs = cos_sin(angle);
  let sn = p.dir * cs.y;
  return vec2f(x1 * cs.x - x2 * sn, x2 * cs.x + x1 * sn);
}

fn store(which: u32, i: u32, val: f32) {
  if (which == 0u) {
    q[i] = val;
  } else if (which == 1u) {
    k[i] = val;
  } else {
    v[i] = val;
  }
}

fn fetch(which: u32, i: u32) -> f32 {
  if (which == 0u) { return q[i]; }
  if (which == 1u) { return k[i]; }
  return v[i];
}

@compute @workgroup_size(128)
fn forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 128u);
  if (i >= p.total) { return; }
  let half = p.R / 2u;
  let W = half + (p.D - p.R);
  let row = i / W;
  let u = i - row * W;
  let pl = place(row);
  if (u >= half) {
    let j = p.R + (u - half);
    store(pl.which, pl.hBase + j, y[pl.yBase + j]);
    return;
  }
  let x1 = y[pl.yBase + u];
  let x2 = y[pl.yBase + u + half];
  if (pl.which == 2u) {
    v[pl.hBase + u] = x1;
    v[pl.hBase + u + half] = x2;
    return;
  }
  let r = rotate(x1, x2, pl.bt, u);
  store(pl.which, pl.hBase + u, r.x);
  store(pl.which, pl.hBase + u + half, r.y);
}

@compute @workgroup_size(128)
fn backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 128u);
  if (i >= p.total) { return; }
  let half = p.R / 2u;
  let W = half + (p.D - p.R);
  let row = i / W;
  let u = i - row * W;
  let pl = place(row);
  if (u >= half) {
    let j = p.R + (u - half);
    dy[pl.yBase + j] = fetch(pl.which, pl.hBase + j);
    return;
  }
  let x1 = fetch(pl.which, pl.hBase + u);
  let x2 = fetch(pl.which, pl.hBase + u + half);
  if (pl.which == 2u) {
    dy[pl.yBase + u] = x1;
    dy[pl.yBase + u + half] = x2;
    return;
  }
  let r = rotate(x1, x2, pl.bt, u);
  dy[pl.yBase + u] = r.x;
  dy[pl.yBase + u + half] = r.y;
}
