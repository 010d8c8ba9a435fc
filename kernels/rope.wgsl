// rope.wgsl — rotary position embedding as Hugging Face applies it (rotate_half: the rotary dims split into two
// halves [x1 | x2], not interleaved). With R the rotary dim (R ≤ D, even; R = D normally) and i < R/2:
//   angle = f32(position) · inv_freq[i]                (an f32 product, as transformers computes it)
//   out[i]       = x1·cos(angle) − x2·dir·sin(angle)
//   out[i + R/2] = x2·cos(angle) + x1·dir·sin(angle)
//   out[j] = x[j] for R ≤ j < D (partial rotary: pass-through)
// dir = +1 is the forward; dir = −1 rotates by −angle, the inverse (= transposed) rotation used by backward.
// cos/sin are computed here, not by WGSL's builtins (which only promise 2^-11 absolute error, and on [−π, π]; on an
// NVIDIA H100 they were off by 2e-4 at angles ≈ 1000 and by 0.06 at ≈ 5e5, against 1e-7 with this code):
// Cody–Waite reduction by π/2 with a six-part split of π/2 (five 5-bit parts, so k·P is exact for |k| < 2^19,
// |angle| < 8.2e5), then Taylor polynomials on |r| ≲ π/4; about 1e-7 absolute error over that range.
//
// Bindings: 0 uniform Params { rows: u32, H: u32, T: u32, D: u32, R: u32, bthd: u32, dir: f32, total: u32 };
//           1 x: array<f32> (read) — [B, H, T, D] (bthd = 0) or [B, T, H, D] (bthd = 1), contiguous;
//           2 pos: array<i32> (read) [B, T];   3 inv_freq: array<f32> (read) [R/2];
//           4 out: array<f32> (read_write), the same shape and layout as x.
// Layout:   rows = B·H·T vectors of D floats, row-major; row ρ covers x[ρ·D .. ρ·D + D).
//           bthd = 0: ρ = (b·H + h)·T + t;  bthd = 1: ρ = (b·T + t)·H + h.
// Dispatch: grid1d(total, 128) with total = rows · W, W = R/2 + (D − R); invocation i = gid.x + gid.y·nwg.x·128
//           handles row i / W, slot u = i % W: u < R/2 rotates the pair (u, u + R/2), else copies R + u − R/2.
// requires: common/grid.wgsl

struct Params { rows: u32, H: u32, T: u32, D: u32, R: u32, bthd: u32, dir: f32, total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// π/2 = P1 + P2 + P3 + P4 + P5 + P6 (P1..P5 have at most 5 significant bits; P6 is the f32-rounded rest).
const P1: f32 = 1.5625;
const P2: f32 = 0.0078125;
const P3: f32 = 0.0004730224609375;
const P4: f32 = 1.049041748046875e-05;
const P5: f32 = 3.129243850708008e-07;
const P6: f32 = 9.92093629470503e-10;
const TWO_OVER_PI: f32 = 0.6366197466850281;

// (cos a, sin a) for an f32 angle a.
fn cos_sin(a: f32) -> vec2f {
  let k = round(a * TWO_OVER_PI);
  var r = a - k * P1;
  r = r - k * P2;
  r = r - k * P3;
  r = r - k * P4;
  r = r - k * P5;
  r = r - k * P6;
  let r2 = r * r;
  // Taylor series to r^9 (sin) and r^10 (cos): truncation error < 4e-9 for |r| ≤ 0.85.
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  // a = r + q·π/2 (mod 2π)
  let q = u32(i32(k)) & 3u;
  if (q == 0u) { return vec2f(c, s); }
  if (q == 1u) { return vec2f(-s, c); }
  if (q == 2u) { return vec2f(-c, -s); }
  return vec2f(s, -c);
}

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 128u);
  if (i >= p.total) { return; }
  let half = p.R / 2u;
  let W = half + (p.D - p.R);
  let row = i / W;
  let u = i - row * W;
  let base = row * p.D;
  if (u >= half) {
    let j = base + p.R + (u - half);
    out[j] = x[j];
    return;
  }
  var b: u32;
  var t: u32;
  if (p.bthd == 0u) {
    t = row % p.T;
    b = row / (p.T * p.H);
  } else {
    let bt = row / p.H;
    t = bt % p.T;
    b = bt / p.T;
  }
  let angle = f32(pos[b * p.T + t]) * inv_freq[u];
  let cs = cos_sin(angle);
  let sn = p.dir * cs.y;
  let x1 = x[base + u];
  let x2 = x[base + u + half];
  out[base + u] = x1 * cs.x - x2 * sn;
  out[base + u + half] = x2 * cs.x + x1 * sn;
}
