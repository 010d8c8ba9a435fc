// binary.wgsl — elementwise a ∘ b (∘ = +, −, ×, ÷) with broadcasting of one operand, the gradients of both
// operands, and the deterministic sums that reduce a broadcast operand's gradient back to its shape.
//
// Bindings (all entries): 0 uniform Params { n, N, sizeA, sizeB: u32, imm: f32, M, K, chunk: u32 };
//           1 a: array<f32> (read); 2 b: array<f32> (read); 3 out: array<f32> (read_write);
//           4 dy: array<f32> (read; used by `grad`, `reduce_rows`, `reduce_cols`, not by `main`).
// Layout:   contiguous. The full tensor (the output's shape) has n elements and last axis N. Each operand
//           is read through its index mode (overrides MODE_A, MODE_B), for element i of the full tensor:
//             0 full: i;  1 row: i % N (an operand [N] against [..., N]);
//             2 column: (i / N) % size (an operand [..., R, 1] or [R, 1] against [..., R, N]);
//             3 scalar: 0 (a one-element tensor);  4 immediate: p.imm (a JS number; its binding is unused
//             and bound to the other operand's buffer).
// Entries:
//   main:        out[i] = a(i) ∘ b(i) for i < n; ∘ chosen by override OP (0 add, 1 sub, 2 mul, 3 div).
//   grad:        out[i] = G(i) for i < n, the gradient of one operand at element i, chosen by override
//                GRAD: 0 dy, 1 −dy, 2 dy·b, 3 dy·a, 4 dy / b, 5 −dy·a / b².
//   reduce_rows: G viewed as a matrix [M, K] (element r·K + j);
//                out[c·K + j] = Σ_{r in chunk c} G(r·K + j), an [ceil(M / chunk), K] matrix of partial sums.
//   reduce_cols: out[r·C + c] = Σ_{j in chunk c} G(r·K + j) with C = ceil(K / chunk), an [M, C] matrix of
//                partial row sums.
//                Each sum runs in a fixed order (deterministic, no atomics); later passes run with GRAD = 0
//                and dy = the previous pass's partials (bound to a and b too) until one row / column remains.
// Dispatch: grid1d(count, 256): invocation t = gid.x + gid.y * num_workgroups.x * 256, where count is n
//           (main, grad), ceil(M / chunk)·K (reduce_rows) or M·ceil(K / chunk) (reduce_cols).
// requires: common/grid.wgsl

struct Params { n: u32, N: u32, sizeA: u32, sizeB: u32, imm: f32, M: u32, K: u32, chunk: u32 }

override OP: u32 = 0u;
override MODE_A: u32 = 0u;
override MODE_B: u32 = 0u;
override GRAD: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;

fn operandIndex(mode: u32, i: u32, size: u32) -> u32 {
  switch (mode) {
    case 1u: { return i % p.N; }
    case 2u: { return (i / p.N) % size; }
    case 3u: { return 0u; }
    default: { return i; }
  }
}

fn va(i: u32) -> f32 {
  if (MODE_A == 4u) { return p.imm; }
  return a[operandIndex(MODE_A, i, p.sizeA)];
}

fn vb(i: u32) -> f32 {
  if (MODE_B == 4u) { return p.imm; }
  return b[operandIndex(MODE_B, i, p.sizeB)];
}

// The gradient of one operand at element i of the full tensor.
fn g(i: u32) -> f32 {
  let d = dy[i];
  switch (GRAD) {
    case 1u: { return -d; }
    case 2u: { return d * vb(i); }
    case 3u: { return d * va(i); }
    case 4u: { return d / vb(i); }
    case 5u: {
      let y = vb(i);
      return -d * va(i) / (y * y);
    }
    default: { return d; }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  let x = va(i);
  let y = vb(i);
  var r: f32;
  switch (OP) {
    case 1u: { r = x - y; }
    case 2u: { r = x * y; }
    case 3u: { r = x / y; }
    default: { r = x + y; }
  }
  out[i] = r;
}

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = grid1d_index(gid, nwg, 256u);
  if (i >= p.n) { return; }
  out[i] = g(i);
}

@compute @workgroup_size(256)
fn reduce_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = grid1d_index(gid, nwg, 256u);
  let chunks = (p.M + p.chunk - 1u) / p.chunk;
  if (t >= chunks * p.K) { return; }
  let j = t % p.K;
  let c = t / p.K;
  let r0 = c * p.chunk;
  let r1 = min(p.M, r0 + p.chunk);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    s += g(r * p.K + j);
  }
  out[t] = s;
}

@compute @workgroup_size(256)
fn reduce_cols(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = grid1d_index(gid, nwg, 256u);
  let C = (p.K + p.chunk - 1u) / p.chunk;
  if (t >= p.M * C) { return; }
  let c = t % C;
  let r = t / C;
  let j0 = c * p.chunk;
  let j1 = min(p.K, j0 + p.chunk);
  let base = r * p.K;
  var s = 0.0;
  for (var j = j0; j < j1; j++) {
    s += g(base + j);
  }
  out[t] = s;
}
