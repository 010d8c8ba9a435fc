// logprob_dlogits.wgsl — the gradient of log p(label) with respect to one vocabulary chunk's logits, in place:
//   z[n, j] ← dy[n] · (1[VLAB + j = labels[n]] − exp(z[n, j] − lse[n])),   0 where labels[n] = ignore.
// For CPU adapters, where the chunk's logits come from the matmul kernels (fused_logprobs.ts); the GPU path
// computes the logits and this in one kernel (logprob_logits.wgsl, entry `dlogits`), with the same formula.
//
// Bindings: 0 uniform Params { N, VC, LDZ, VLAB: u32, ignore: i32 };
//           1 z: array<f32> (read_write) [N, LDZ] — this chunk's logits in, their gradient out (columns < VC);
//           2 labels: array<i32> (read) [N];  3 lse: array<f32> (read) [N] (logsumexp over the whole vocabulary);
//           4 dy: array<f32> (read) [N] (gradient of each row's log-prob).
// Dispatch: grid1d(N · ceil(VC / 8), 64): invocation i takes row i / ceil(VC / 8), columns 8·(i mod ceil(VC / 8))
//           .. + 7 (so a row's label, lse and dy are loaded once per 8 entries).
// requires: common/grid.wgsl

struct Params { N: u32, VC: u32, LDZ: u32, VLAB: u32, ignore: i32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let per_row = (p.VC + 7u) / 8u;
  let i = grid1d_index(gid, nwg, 64u);
  if (i >= p.N * per_row) { return; }
  let n = i / per_row;
  let j0 = 8u * (i % per_row);
  let at = n * p.LDZ;
  let j1 = min(j0 + 8u, p.VC);
  let lab = labels[n];
  if (lab == p.ignore) {
    for (var j = j0; j < j1; j++) { z[at + j] = 0.0; }
    return;
  }
  let g = dy[n];
  let l = lse[n];
  for (var j = j0; j < j1; j++) {
    let hit = select(0.0, 1.0, i32(p.VLAB + j) == lab);
    z[at + j] = g * (hit - exp(z[at + j] - l));
  }
}
