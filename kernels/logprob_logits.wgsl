// logprob_logits.wgsl — one vocabulary chunk of the LM head, z = h · W[chunk]ᵀ, register-tiled.
//
// Entry `logits`:  z[n, j] = Σ_c h[n, c] · W[VBASE + j, c]                        (forward / materialised logits)
// Entry `dlogits`: z[n, j] = dy[n] · (1[VLAB + j = labels[n]] − exp(logit[n, j] − lse[n])), 0 where
//                  labels[n] = ignore                                               (backward of log p(label))
//
// Bindings: 0 uniform Params { N, VC, C4, LDZ, VBASE, VLAB: u32, ignore: i32 };
//           1 h: array<vec4f> (read) [N, C4] — hidden states, C padded to C4·4 columns;
//           2 w: array<vec4f> (read) [≥ VBASE+VC, C4] — LM-head rows, row VBASE is this chunk's first entry;
//           3 z: array<f32> (read_write) [N, LDZ] — output, columns 0..VC−1 written;
//           4 labels: array<i32> (read) [N]  (dlogits only);
//           5 lse: array<f32> (read) [N]     (dlogits only) — per-row logsumexp over the whole vocabulary;
//           6 dy: array<f32> (read) [N]      (dlogits only) — gradient of the per-token log-prob.
// Layout:   row-major and contiguous; C4 = C/4 (the op pads C to a multiple of 4 first).
// Dispatch: workgroups (ceil(VC / 64), ceil(N / 64)), workgroup 8×8; each invocation computes a register tile of
//           TM=8 rows × TN=8 vocabulary entries with vec4 loads over C (8+8 vec4 loads per 64 vec4 dot products;
//           on lavapipe, where an invocation is one SIMD lane, 8×8 measured fastest of 2×4 … 16×4).

struct Params { N: u32, VC: u32, C4: u32, LDZ: u32, VBASE: u32, VLAB: u32, ignore: i32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> h: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;
@group(0) @binding(4) var<storage, read> labels: array<i32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> dy: array<f32>;

const TM = 8u;
const TN = 8u;

// The 8×8 tile at rows n0.., chunk entries j0.. as 16 vec4s: [2i] = row n0+i, entries j0..j0+3; [2i+1] = entries
// j0+4..j0+7. Rows/entries past the end are clamped (computed, never stored). Written out unrolled: on lavapipe
// the same tile through loops over local arrays ran about 35% slower.
fn tile(n0: u32, j0: u32) -> array<vec4f, 16> {
  let c4 = p.C4;
  let ln = p.N - 1u;
  let lj = p.VC - 1u;
  let h0 = min(n0 + 0u, ln) * c4;
  let h1 = min(n0 + 1u, ln) * c4;
  let h2 = min(n0 + 2u, ln) * c4;
  let h3 = min(n0 + 3u, ln) * c4;
  let h4 = min(n0 + 4u, ln) * c4;
  let h5 = min(n0 + 5u, ln) * c4;
  let h6 = min(n0 + 6u, ln) * c4;
  let h7 = min(n0 + 7u, ln) * c4;
  let w0 = (p.VBASE + min(j0 + 0u, lj)) * c4;
  let w1 = (p.VBASE + min(j0 + 1u, lj)) * c4;
  let w2 = (p.VBASE + min(j0 + 2u, lj)) * c4;
  let w3 = (p.VBASE + min(j0 + 3u, lj)) * c4;
  let w4 = (p.VBASE + min(j0 + 4u, lj)) * c4;
  let w5 = (p.VBASE + min(j0 + 5u, lj)) * c4;
  let w6 = (p.VBASE + min(j0 + 6u, lj)) * c4;
  let w7 = (p.VBASE + min(j0 + 7u, lj)) * c4;
  var a00 = vec4f(0.0);
  var a01 = vec4f(0.0);
  var a10 = vec4f(0.0);
  var a11 = vec4f(0.0);
  var a20 = vec4f(0.0);
  var a21 = vec4f(0.0);
  var a30 = vec4f(0.0);
  var a31 = vec4f(0.0);
  var a40 = vec4f(0.0);
  var a41 = vec4f(0.0);
  var a50 = vec4f(0.0);
  var a51 = vec4f(0.0);
  var a60 = vec4f(0.0);
  var a61 = vec4f(0.0);
  var a70 = vec4f(0.0);
  var a71 = vec4f(0.0);
  for (var k = 0u; k < c4; k++) {
    let x0 = w[w0 + k];
    let x1 = w[w1 + k];
    let x2 = w[w2 + k];
    let x3 = w[w3 + k];
    let x4 = w[w4 + k];
    let x5 = w[w5 + k];
    let x6 = w[w6 + k];
    let x7 = w[w7 + k];
    let y0 = h[h0 + k];
    a00 += vec4f(dot(y0, x0), dot(y0, x1), dot(y0, x2), dot(y0, x3));
    a01 += vec4f(dot(y0, x4), dot(y0, x5), dot(y0, x6), dot(y0, x7));
    let y1 = h[h1 + k];
    a10 += vec4f(dot(y1, x0), dot(y1, x1), dot(y1, x2), dot(y1, x3));
    a11 += vec4f(dot(y1, x4), dot(y1, x5), dot(y1, x6), dot(y1, x7));
    let y2 = h[h2 + k];
    a20 += vec4f(dot(y2, x0), dot(y2, x1), dot(y2, x2), dot(y2, x3));
    a21 += vec4f(dot(y2, x4), dot(y2, x5), dot(y2, x6), dot(y2, x7));
    let y3 = h[h3 + k];
    a30 += vec4f(dot(y3, x0), dot(y3, x1), dot(y3, x2), dot(y3, x3));
    a31 += vec4f(dot(y3, x4), dot(y3, x5), dot(y3, x6), dot(y3, x7));
    let y4 = h[h4 + k];
    a40 += vec4f(dot(y4, x0), dot(y4, x1), dot(y4, x2), dot(y4, x3));
    a41 += vec4f(dot(y4, x4), dot(y4, x5), dot(y4, x6), dot(y4, x7));
    let y5 = h[h5 + k];
    a50 += vec4f(dot(y5, x0), dot(y5, x1), dot(y5, x2), dot(y5, x3));
    a51 += vec4f(dot(y5, x4), dot(y5, x5), dot(y5, x6), dot(y5, x7));
    let y6 = h[h6 + k];
    a60 += vec4f(dot(y6, x0), dot(y6, x1), dot(y6, x2), dot(y6, x3));
    a61 += vec4f(dot(y6, x4), dot(y6, x5), dot(y6, x6), dot(y6, x7));
    let y7 = h[h7 + k];
    a70 += vec4f(dot(y7, x0), dot(y7, x1), dot(y7, x2), dot(y7, x3));
    a71 += vec4f(dot(y7, x4), dot(y7, x5), dot(y7, x6), dot(y7, x7));
  }
  return array<vec4f, 16>(
    a00, a01, a10, a11, a20, a21, a30, a31,
    a40, a41, a50, a51, a60, a61, a70, a71,
  );
}

// Stores row n's logits for entries j0..j0+7 (a: the first four, b: the next four), skipping those past the end.
fn putLogits(n: u32, j0: u32, a: vec4f, b: vec4f) {
  if (n >= p.N) { return; }
  let at = n * p.LDZ + j0;
  let k = min(p.VC - j0, TN);
  for (var j = 0u; j < k; j++) {
    z[at + j] = select(b[j & 3u], a[j & 3u], j < 4u);
  }
}

@compute @workgroup_size(8, 8)
fn logits(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * TN;
  let n0 = gid.y * TM;
  if (j0 >= p.VC || n0 >= p.N) { return; }
  let t = tile(n0, j0);
  putLogits(n0 + 0u, j0, t[0], t[1]);
  putLogits(n0 + 1u, j0, t[2], t[3]);
  putLogits(n0 + 2u, j0, t[4], t[5]);
  putLogits(n0 + 3u, j0, t[6], t[7]);
  putLogits(n0 + 4u, j0, t[8], t[9]);
  putLogits(n0 + 5u, j0, t[10], t[11]);
  putLogits(n0 + 6u, j0, t[12], t[13]);
  putLogits(n0 + 7u, j0, t[14], t[15]);
}

// Stores dy[n]·(1[label] − exp(logit − lse[n])) for row n, entries j0..j0+7; zeros on an ignored row.
fn putGrad(n: u32, j0: u32, a: vec4f, b: vec4f) {
  if (n >= p.N) { return; }
  let at = n * p.LDZ + j0;
  let k = min(p.VC - j0, TN);
  let lab = labels[n];
  if (lab == p.ignore) {
    for (var j = 0u; j < k; j++) { z[at + j] = 0.0; }
    return;
  }
  let g = dy[n];
  let l = lse[n];
  let ea = exp(a - l);
  let eb = exp(b - l);
  for (var j = 0u; j < k; j++) {
    let hit = select(0.0, 1.0, i32(p.VLAB + j0 + j) == lab);
    z[at + j] = g * (hit - select(eb[j & 3u], ea[j & 3u], j < 4u));
  }
}

@compute @workgroup_size(8, 8)
fn dlogits(@builtin(global_invocation_id) gid: vec3u) {
  let j0 = gid.x * TN;
  let n0 = gid.y * TM;
  if (j0 >= p.VC || n0 >= p.N) { return; }
  let t = tile(n0, j0);
  putGrad(n0 + 0u, j0, t[0], t[1]);
  putGrad(n0 + 1u, j0, t[2], t[3]);
  putGrad(n0 + 2u, j0, t[4], t[5]);
  putGrad(n0 + 3u, j0, t[6], t[7]);
  putGrad(n0 + 4u, j0, t[8], t[9]);
  putGrad(n0 + 5u, j0, t[10], t[11]);
  putGrad(n0 + 6u, j0, t[12], t[13]);
  putGrad(n0 + 7u, j0, t[14], t[15]);
}
