// rmsnorm_decode.wgsl — RMSNorm of few rows (decoding: one token per sequence) on CPU adapters, with the values of
// rmsnorm.wgsl's `forward_rows` (the same blocked sum of squares and the same expressions):
//   y[n, c] = w[c] · (x[n, c] · rstd[n]),   rstd[n] = 1 / sqrt(mean_c(x[n, c]²) + eps).
// `forward_rows` gives each row to one invocation, so a single row keeps one SIMD lane of eight busy and loads
// every element lane by lane. Here a row is a workgroup of 8: the row index comes from the workgroup id, so its
// loads are the same for every lane (llvmpipe loads them once), every lane forms the same sum, and lane j writes
// columns j, j + 8, … No rstd is written (decoding has no backward).
//
// Bindings: 0 uniform Params { N: u32, C: u32, eps: f32 }; 1 x: array<f32> (read) [N, C];
//           2 w: array<f32> (read) [C]; 3 out: array<f32> (read_write) [N, C].
// Layout:   row-major, contiguous; row n of x starts at n·C.
// Dispatch: (min(N, 65535), ceil(N / 65535), 1) workgroups of 8: row = wid.x + wid.y · nwg.x. Each invocation
//           loops C + C / 8 times (C ≤ 16384 for lavapipe's loop limit, as `forward_rows`).

struct Params { N: u32, C: u32, eps: f32 }

// forward_rows's summation block.
const BLOCK: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(8)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c0 = 0u; c0 < p.C; c0 += BLOCK) {
    var part = 0.0;
    for (var c = c0; c < min(p.C, c0 + BLOCK); c++) {
      let v = x[base + c];
      part += v * v;
    }
    ss += part;
  }
  let r = inverseSqrt(ss / f32(p.C) + p.eps);
  for (var c = lid.x; c < p.C; c += 8u) {
    out[base + c] = w[c] * (x[base + c] * r);
  }
}
