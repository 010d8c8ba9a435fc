// rope.wgsl — rotary position embedding as Hugging Face applies it (rotate_half: the rotary dims split into two
// halves [x1 | x2], not interleaved). With R the rotary dim (R ≤ D, even; R = D normally) and i < R/2:
//   angle = f32(position) · inv_freq[i]                (an f32 product, as transformers computes it)
//   out[i]       = x1·cos(angle) − x2·dir·sin(angle)
//   out[i + R/2] = x2·cos(angle) + x1·dir·sin(angle)
//   out[j] = x[j] for R ≤ j < D (partial rotary: pass-through)
// dir = +1 is the forward; dir = −1 rotates by −angle, the inverse (= transposed) rotation used by backward.
// cos/sin are computed by cos_sin (common/rope_cos_sin.wgsl), not by WGSL's builtins (see there).
//
// Bindings: 0 uniform Params { rows: u32, H: u32, T: u32, D: u32, R: u32, bthd: u32, dir: f32, total: u32 };
//           1 x: array<f32> (read) — [B, H, T, D] (bthd = 0) or [B, T, H, D] (bthd = 1), contiguous;
//           2 pos: array<i32> (read) [B, T];   3 inv_freq: array<f32> (read) [R/2];
//           4 out: array<f32> (read_write), the same shape and layout as x.
// Layout:   rows = B·H·T vectors of D floats, row-major; row ρ covers x[ρ·D .. ρ·D + D).
//           bthd = 0: ρ = (b·H + h)·T + t;  bthd = 1: ρ = (b·T + t)·H + h.
// Dispatch: grid1d(total, 128) with total = rows · W, W = R/2 + (D − R); invocation i = gid.x + gid.y·nwg.x·128
//           handles row i / W, slot u = i % W: u < R/2 rotates the pair (u, u + R/2), else copies R + u − R/2.
// requires: common/grid.wgsl, common/rope_cos_sin.wgsl

struct Params { rows: u32, H: u32, T: u32, D: u32, R: u32, bthd: u32, dir: f32, total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

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
