// common/rope_cos_sin.wgsl — cos and sin of an f32 angle for rotary position embedding (shared by rope.wgsl,
// rope_kv_append.wgsl and qkv_rope.wgsl, so all rotate by exactly the same values).
// WGSL's cos/sin builtins only promise 2^-11 absolute error, and on [−π, π]; on an NVIDIA H100 they were off by
// 2e-4 at angles ≈ 1000 and by 0.06 at ≈ 5e5, against 1e-7 with this code: Cody–Waite reduction by π/2 with a
// six-part split of π/2 (five 5-bit parts, so k·P is exact for |k| < 2^19, |angle| < 8.2e5), then Taylor
// polynomials on |r| ≲ π/4; about 1e-7 absolute error over that range.

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
