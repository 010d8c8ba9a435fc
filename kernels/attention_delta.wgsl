// attention_delta.wgsl — first step of the attention backward: per query row, the logsumexp saved by the forward
// and Δ = rowsum(dO ⊙ O), packed side by side for the dQ and dK/dV kernels.
//
// Bindings: 0 uniform Params { rows: u32 } (rows = B·H·TQ);
//           1 o     [rows, D] f32 (read): the forward's output;
//           2 dout  [rows, D] f32 (read): the output's gradient;
//           3 lse   [rows] f32 (read): the forward's logsumexp (-inf for a row that sees no key);
//           4 stats [rows, 2] f32 (read_write): stats[2r] = lse[r], stats[2r + 1] = Δ_r.
// Layout:   contiguous row-major.
// Dispatch: grid1d(rows, 64); row r = gid.x + gid.y · nwg.x · 64. Override constant D (head dim).
// requires: common/grid.wgsl

struct Params {
  rows: u32,
}

override D: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> o: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = grid1d_index(gid, nwg, 64u);
  if (r >= p.rows) {
    return;
  }
  var acc = 0.0;
  for (var d = 0u; d < D; d++) {
    acc += o[r * D + d] * dout[r * D + d];
  }
  stats[2u * r] = lse[r];
  stats[2u * r + 1u] = acc;
}
