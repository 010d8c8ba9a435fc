// rope_kv_append.wgsl — one decoding step's RoPE and KV cache write in one dispatch (no-grad decoding only):
// rotates the new queries and keys as rope.wgsl does (the same cos_sin and the same products, so the values are
// identical), writes the rotated queries as [B, H, T, D] and the rotated keys and the values into the cache at
// positions t0 .. t0 + T − 1 (what rope.wgsl twice and kv_append.wgsl twice did in four dispatches).
// With R the rotary dim (R ≤ D, even) and i < R/2, per row of D floats:
//   angle = f32(position) · inv_freq[i];  out[i] = x1·cos − x2·sin;  out[i + R/2] = x2·cos + x1·sin;
//   out[j] = x[j] for R ≤ j < D.
//
// Bindings: 0 uniform Params (below); 1 q: array<f32> (read) [B, T, H, D]; 2 k: array<f32> (read) [B, T, HKV, D];
//           3 v: array<f32> (read) [B, T, HKV, D] (the projections' outputs as they are: [B, T, heads·D]);
//           4 pos: array<i32> (read) [B, T]; 5 inv_freq: array<f32> (read) [R/2];
//           6 qo: array<f32> (read_write) [B, H, T, D]; 7 kc, 8 vc: array<f32> (read_write) [B, HKV, cap, D].
// Layout:   contiguous row-major; position t of the step goes to cache position t0 + t.
// Dispatch: grid1d(total, 128), total = nRot + B·T·HKV·D with nRot = B·T·(H + HKV)·W, W = R/2 + (D − R).
//           Invocation i < nRot: row ρ = i / W of the (b, t, head) rows, heads 0..H−1 the queries and H..H+HKV−1
//           the keys, slot u = i % W (u < R/2 rotates the pair (u, u + R/2), else copies R + u − R/2);
//           i ≥ nRot: value element j = i − nRot of v, copied.
// requires: common/grid.wgsl, common/rope_cos_sin.wgsl

struct Params { T: u32, H: u32, HKV: u32, D: u32, R: u32, cap: u32, t0: u32, nRot: u32, total: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<i32>;
@group(0) @binding(5) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(6) var<storage, read_write> qo: array<f32>;
@group(0) @binding(7) var<storage, read_write> kc: array<f32>;
@group(0) @binding(8) var<storage, read_write> vc: array<f32>;

// The rotated pair (x1, x2) at angle position · inv_freq[u] (rope.wgsl's forward expressions).
fn rotate(x1: f32, x2: f32, bt: u32, u: u32) -> vec2f {
  let angle = f32(pos[bt]) * inv_freq[u];
  let cs = cos_sin(angle);
  let sn = cs.y;
  return vec2f(x1 * cs.x - x2 * sn, x2 * cs.x + x1 * sn);
}

@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 128u);
  if (i >= p.total) { return; }
  if (i >= p.nRot) {
    let j = i - p.nRot;
    let d = j % p.D;
    let r = j / p.D;
    let h = r % p.HKV;
    let bt = r / p.HKV;
    let b = bt / p.T;
    let t = bt - b * p.T;
    vc[((b * p.HKV + h) * p.cap + p.t0 + t) * p.D + d] = v[j];
    return;
  }
  let half = p.R / 2u;
  let W = half + (p.D - p.R);
  let row = i / W;
  let u = i - row * W;
  let heads = p.H + p.HKV;
  let bt = row / heads;
  let hh = row - bt * heads;
  let b = bt / p.T;
  let t = bt - b * p.T;
  if (hh < p.H) {
    let src = (bt * p.H + hh) * p.D;
    let dst = ((b * p.H + hh) * p.T + t) * p.D;
    if (u >= half) {
      let j = p.R + (u - half);
      qo[dst + j] = q[src + j];
      return;
    }
    let o = rotate(q[src + u], q[src + u + half], bt, u);
    qo[dst + u] = o.x;
    qo[dst + u + half] = o.y;
  } else {
    let h = hh - p.H;
    let src = (bt * p.HKV + h) * p.D;
    let dst = ((b * p.HKV + h) * p.cap + p.t0 + t) * p.D;
    if (u >= half) {
      let j = p.R + (u - half);
      kc[dst + j] = k[src + j];
      return;
    }
    let o = rotate(k[src + u], k[src + u + half], bt, u);
    kc[dst + u] = o.x;
    kc[dst + u + half] = o.y;
  }
}
