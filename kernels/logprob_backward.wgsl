// logprob_backward.wgsl — the two products of the LM head's backward, one vocabulary chunk (or row block) at a time.
//
// Entry `dh`: o[n, c] (+)= Σ_{k ∈ [KBASE, KBASE+K)} g[n, k] · m[MBASE + k, c]      (dH from dLogits · W; R = N rows)
// Entry `dw`: o[OBASE + j, c] (+)= Σ_{k ∈ [KBASE, KBASE+K)} g[k, j] · m[MBASE + k, c]   (dW from dLogitsᵀ · h; R = VC)
// "(+)=": with ACC = 1 the sum is added to what o holds (accumulation over chunks / row blocks / K pieces, in
// dispatch order: deterministic, no atomics); with ACC = 0 it overwrites. The op splits K into pieces of at most
// 16384 (KBASE, K): lavapipe stops an invocation after 65535 loop iterations in all (llvmpipe's loop limiter).
//
// Bindings: 0 uniform Params { R, K, C4, LDG, MBASE, OBASE, ACC, KBASE: u32 };
//           1 g: array<f32> (read) — dLogits, row-major with row stride LDG (dh: [R, LDG]; dw: [rows, LDG]);
//           2 m: array<vec4f> (read) [rows, C4] — W for dh, h for dw;
//           3 o: array<vec4f> (read_write) [rows, C4] — dH for dh, dW for dw.
// Layout:   row-major, contiguous; C4 = C/4 (C padded to a multiple of 4).
// Dispatch: workgroups (ceil(C4 / 32), ceil(R / 64)), workgroup 8×8; each invocation owns TR=8 output rows ×
//           TC=4 vec4 columns (32 vec4 accumulators) and walks the K dimension with 8 scalar + 4 vec4 loads per
//           32 vec4 FMAs (on lavapipe 8×4 measured fastest of 4×2 … 16×4; written out unrolled for the same reason
//           as logprob_logits.wgsl).

struct Params { R: u32, K: u32, C4: u32, LDG: u32, MBASE: u32, OBASE: u32, ACC: u32, KBASE: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> m: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4f>;

const TR = 8u;
const TC = 4u;

// Writes (or with ACC adds) one output row's 4 vec4 columns c0..c0+3, skipping rows/columns past the end.
fn put(r: u32, c0: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f) {
  if (r >= p.R) { return; }
  let at = (p.OBASE + r) * p.C4 + c0;
  let n = min(p.C4 - c0, TC);
  if (p.ACC != 0u) {
    o[at] += v0;
    if (n > 1u) { o[at + 1u] += v1; }
    if (n > 2u) { o[at + 2u] += v2; }
    if (n > 3u) { o[at + 3u] += v3; }
  } else {
    o[at] = v0;
    if (n > 1u) { o[at + 1u] = v1; }
    if (n > 2u) { o[at + 2u] = v2; }
    if (n > 3u) { o[at + 3u] = v3; }
  }
}

@compute @workgroup_size(8, 8)
fn dh(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.x * TC;
  let r0 = gid.y * TR;
  if (c0 >= p.C4 || r0 >= p.R) { return; }
  let lr = p.R - 1u;
  let lc = p.C4 - 1u;
  let g0 = min(r0 + 0u, lr) * p.LDG;
  let g1 = min(r0 + 1u, lr) * p.LDG;
  let g2 = min(r0 + 2u, lr) * p.LDG;
  let g3 = min(r0 + 3u, lr) * p.LDG;
  let g4 = min(r0 + 4u, lr) * p.LDG;
  let g5 = min(r0 + 5u, lr) * p.LDG;
  let g6 = min(r0 + 6u, lr) * p.LDG;
  let g7 = min(r0 + 7u, lr) * p.LDG;
  let q0 = min(c0 + 0u, lc);
  let q1 = min(c0 + 1u, lc);
  let q2 = min(c0 + 2u, lc);
  let q3 = min(c0 + 3u, lc);
  var a00 = vec4f(0.0); var a01 = vec4f(0.0); var a02 = vec4f(0.0); var a03 = vec4f(0.0);
  var a10 = vec4f(0.0); var a11 = vec4f(0.0); var a12 = vec4f(0.0); var a13 = vec4f(0.0);
  var a20 = vec4f(0.0); var a21 = vec4f(0.0); var a22 = vec4f(0.0); var a23 = vec4f(0.0);
  var a30 = vec4f(0.0); var a31 = vec4f(0.0); var a32 = vec4f(0.0); var a33 = vec4f(0.0);
  var a40 = vec4f(0.0); var a41 = vec4f(0.0); var a42 = vec4f(0.0); var a43 = vec4f(0.0);
  var a50 = vec4f(0.0); var a51 = vec4f(0.0); var a52 = vec4f(0.0); var a53 = vec4f(0.0);
  var a60 = vec4f(0.0); var a61 = vec4f(0.0); var a62 = vec4f(0.0); var a63 = vec4f(0.0);
  var a70 = vec4f(0.0); var a71 = vec4f(0.0); var a72 = vec4f(0.0); var a73 = vec4f(0.0);
  for (var kk = 0u; kk < p.K; kk++) {
    let k = p.KBASE + kk;
    let mr = (p.MBASE + k) * p.C4;
    let m0 = m[mr + q0];
    let m1 = m[mr + q1];
    let m2 = m[mr + q2];
    let m3 = m[mr + q3];
    let x0 = g[g0 + k];
    a00 += x0 * m0; a01 += x0 * m1; a02 += x0 * m2; a03 += x0 * m3;
    let x1 = g[g1 + k];
    a10 += x1 * m0; a11 += x1 * m1; a12 += x1 * m2; a13 += x1 * m3;
    let x2 = g[g2 + k];
    a20 += x2 * m0; a21 += x2 * m1; a22 += x2 * m2; a23 += x2 * m3;
    let x3 = g[g3 + k];
    a30 += x3 * m0; a31 += x3 * m1; a32 += x3 * m2; a33 += x3 * m3;
    let x4 = g[g4 + k];
    a40 += x4 * m0; a41 += x4 * m1; a42 += x4 * m2; a43 += x4 * m3;
    let x5 = g[g5 + k];
    a50 += x5 * m0; a51 += x5 * m1; a52 += x5 * m2; a53 += x5 * m3;
    let x6 = g[g6 + k];
    a60 += x6 * m0; a61 += x6 * m1; a62 += x6 * m2; a63 += x6 * m3;
    let x7 = g[g7 + k];
    a70 += x7 * m0; a71 += x7 * m1; a72 += x7 * m2; a73 += x7 * m3;
  }
  put(r0 + 0u, c0, a00, a01, a02, a03);
  put(r0 + 1u, c0, a10, a11, a12, a13);
  put(r0 + 2u, c0, a20, a21, a22, a23);
  put(r0 + 3u, c0, a30, a31, a32, a33);
  put(r0 + 4u, c0, a40, a41, a42, a43);
  put(r0 + 5u, c0, a50, a51, a52, a53);
  put(r0 + 6u, c0, a60, a61, a62, a63);
  put(r0 + 7u, c0, a70, a71, a72, a73);
}

@compute @workgroup_size(8, 8)
fn dw(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.x * TC;
  let r0 = gid.y * TR;
  if (c0 >= p.C4 || r0 >= p.R) { return; }
  let lr = p.R - 1u;
  let lc = p.C4 - 1u;
  let g0 = min(r0 + 0u, lr);
  let g1 = min(r0 + 1u, lr);
  let g2 = min(r0 + 2u, lr);
  let g3 = min(r0 + 3u, lr);
  let g4 = min(r0 + 4u, lr);
  let g5 = min(r0 + 5u, lr);
  let g6 = min(r0 + 6u, lr);
  let g7 = min(r0 + 7u, lr);
  let q0 = min(c0 + 0u, lc);
  let q1 = min(c0 + 1u, lc);
  let q2 = min(c0 + 2u, lc);
  let q3 = min(c0 + 3u, lc);
  var a00 = vec4f(0.0); var a01 = vec4f(0.0); var a02 = vec4f(0.0); var a03 = vec4f(0.0);
  var a10 = vec4f(0.0); var a11 = vec4f(0.0); var a12 = vec4f(0.0); var a13 = vec4f(0.0);
  var a20 = vec4f(0.0); var a21 = vec4f(0.0); var a22 = vec4f(0.0); var a23 = vec4f(0.0);
  var a30 = vec4f(0.0); var a31 = vec4f(0.0); var a32 = vec4f(0.0); var a33 = vec4f(0.0);
  var a40 = vec4f(0.0); var a41 = vec4f(0.0); var a42 = vec4f(0.0); var a43 = vec4f(0.0);
  var a50 = vec4f(0.0); var a51 = vec4f(0.0); var a52 = vec4f(0.0); var a53 = vec4f(0.0);
  var a60 = vec4f(0.0); var a61 = vec4f(0.0); var a62 = vec4f(0.0); var a63 = vec4f(0.0);
  var a70 = vec4f(0.0); var a71 = vec4f(0.0); var a72 = vec4f(0.0); var a73 = vec4f(0.0);
  for (var kk = 0u; kk < p.K; kk++) {
    let k = p.KBASE + kk;
    let mr = (p.MBASE + k) * p.C4;
    let m0 = m[mr + q0];
    let m1 = m[mr + q1];
    let m2 = m[mr + q2];
    let m3 = m[mr + q3];
    let gr = k * p.LDG;
    let x0 = g[gr + g0];
    a00 += x0 * m0; a01 += x0 * m1; a02 += x0 * m2; a03 += x0 * m3;
    let x1 = g[gr + g1];
    a10 += x1 * m0; a11 += x1 * m1; a12 += x1 * m2; a13 += x1 * m3;
    let x2 = g[gr + g2];
    a20 += x2 * m0; a21 += x2 * m1; a22 += x2 * m2; a23 += x2 * m3;
    let x3 = g[gr + g3];
    a30 += x3 * m0; a31 += x3 * m1; a32 += x3 * m2; a33 += x3 * m3;
    let x4 = g[gr + g4];
    a40 += x4 * m0; a41 += x4 * m1; a42 += x4 * m2; a43 += x4 * m3;
    let x5 = g[gr + g5];
    a50 += x5 * m0; a51 += x5 * m1; a52 += x5 * m2; a53 += x5 * m3;
    let x6 = g[gr + g6];
    a60 += x6 * m0; a61 += x6 * m1; a62 += x6 * m2; a63 += x6 * m3;
    let x7 = g[gr + g7];
    a70 += x7 * m0; a71 += x7 * m1; a72 += x7 * m2; a73 += x7 * m3;
  }
  put(r0 + 0u, c0, a00, a01, a02, a03);
  put(r0 + 1u, c0, a10, a11, a12, a13);
  put(r0 + 2u, c0, a20, a21, a22, a23);
  put(r0 + 3u, c0, a30, a31, a32, a33);
  put(r0 + 4u, c0, a40, a41, a42, a43);
  put(r0 + 5u, c0, a50, a51, a52, a53);
  put(r0 + 6u, c0, a60, a61, a62, a63);
  put(r0 + 7u, c0, a70, a71, a72, a73);
}
