// lora_dropout.wgsl — inverted dropout with a counter-based mask: out[i] = keep(i) ? x[i] * scale : 0, where
// keep(i) = hash(i, seed) >= threshold. The mask is a pure function of (i, seed), so the backward pass applies the
// same kernel with the same seed to dy instead of storing the mask.
//
// hash(i, seed) = mix(i + mix(seed)), mix = the "lowbias32" integer finaliser
//   (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16).
// threshold = floor(p · 2^32) (so an element is kept with probability 1 − p), scale = 1 / (1 − p).
//
// Bindings: 0 uniform Params { n: u32, seed: u32, threshold: u32, scale: f32 }; 1 x: array<f32> (read);
//           2 out: array<f32> (read_write).
// Layout:   flat, contiguous, n elements each.
// Dispatch: grid1d(n, 256): invocation i = gid.x + gid.y * num_workgroups.x * 256.
// requires: common/grid.wgsl

struct Params { n: u32, seed: u32, threshold: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn mix(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let keep = mix(i + mix(p.seed)) >= p.threshold;
  out[i] = select(0.0, x[i] * p.scale, keep);
}
