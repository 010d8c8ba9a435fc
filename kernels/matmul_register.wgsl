// matmul_register.wgsl — C = alpha·op(A)·op(B) (+ C when accumulating), register-tiled for CPU adapters
// (lavapipe/llvmpipe), where each invocation is one SIMD lane and every load costs far more than an FMA.
//
// Each invocation computes a 16×16 block of C in registers; a workgroup of 8 invocations covers 16 rows × 128
// columns. K advances 4 at a time: the invocation loads its 4×16 block of B (16 vec4 loads, the only loads
// whose addresses differ between lanes), then for each group of 4 of its 16 rows loads a 4×4 block of A (4
// vec4 loads at addresses shared by every lane of the workgroup; on llvmpipe they cost as much as the others:
// a block of 64 rows × 4 columns, with 4× the A loads and a quarter of the B loads, ran at half the speed)
// and does 16 vec4 FMAs per row. matmul_subgroup.wgsl loads A once per subgroup instead, where subgroups
// exist. The block was chosen by measurement on llvmpipe (bench/RESULTS.md): smaller blocks pay more loads per
// FMA; 32×16 was no faster (±5%) and took 2.5× as long to compile (8 s of CPU per pipeline).
// On llvmpipe every load is a loop over the SIMD lanes, so loads, not FMAs, set the speed.
//
// Bindings: 0 uniform Params; 1 a: array<vec4f> (read); 2 b: array<vec4f> (read); 3 c: array<f32>
//           (read_write); declared with the operand layout in common/matmul_vec4_params.wgsl.
// Dispatch: (ceil(N / 128), ceil(M / 16), batches), or part of it: invocation lid.x of workgroup (x, y, z)
//           computes rows mOff + 16·y .. + 15 and columns nOff + 128·x + 16·lid.x .. + 15 of batch z.
//           Edges: loads are clamped into the operands (A's values past K read as 0), stores past M or N are
//           skipped.
// Overrides: TRANS_A, TRANS_B (operand layouts): each combination is its own pipeline, so the branches on
//           them cost nothing.
// requires: common/matmul_vec4_params.wgsl

// A 4 (k) × 16 (n) block of B.
struct Blk { k0: Row, k1: Row, k2: Row, k3: Row }

// B[k .. k+3, n0 .. n0+15] for one invocation; bb = B's first vec4. Columns past N and rows past K are
// clamped (the matching A values are 0, the matching outputs are not stored).
fn loadB(bb: u32, k: u32, n0: u32) -> Blk {
  if (TRANS_B) {
    // B stored [N, K]: one vec4 along k per column, then transposed.
    let n1 = p.N - 1u;
    let k4 = k / 4u;
    let t0 = b[bb + min(n0 + 0u, n1) * p.ldb4 + k4];
    let t1 = b[bb + min(n0 + 1u, n1) * p.ldb4 + k4];
    let t2 = b[bb + min(n0 + 2u, n1) * p.ldb4 + k4];
    let t3 = b[bb + min(n0 + 3u, n1) * p.ldb4 + k4];
    let t4 = b[bb + min(n0 + 4u, n1) * p.ldb4 + k4];
    let t5 = b[bb + min(n0 + 5u, n1) * p.ldb4 + k4];
    let t6 = b[bb + min(n0 + 6u, n1) * p.ldb4 + k4];
    let t7 = b[bb + min(n0 + 7u, n1) * p.ldb4 + k4];
    let t8 = b[bb + min(n0 + 8u, n1) * p.ldb4 + k4];
    let t9 = b[bb + min(n0 + 9u, n1) * p.ldb4 + k4];
    let t10 = b[bb + min(n0 + 10u, n1) * p.ldb4 + k4];
    let t11 = b[bb + min(n0 + 11u, n1) * p.ldb4 + k4];
    let t12 = b[bb + min(n0 + 12u, n1) * p.ldb4 + k4];
    let t13 = b[bb + min(n0 + 13u, n1) * p.ldb4 + k4];
    let t14 = b[bb + min(n0 + 14u, n1) * p.ldb4 + k4];
    let t15 = b[bb + min(n0 + 15u, n1) * p.ldb4 + k4];
    return Blk(
      Row(vec4f(t0.x, t1.x, t2.x, t3.x), vec4f(t4.x, t5.x, t6.x, t7.x),
          vec4f(t8.x, t9.x, t10.x, t11.x), vec4f(t12.x, t13.x, t14.x, t15.x)),
      Row(vec4f(t0.y, t1.y, t2.y, t3.y), vec4f(t4.y, t5.y, t6.y, t7.y),
          vec4f(t8.y, t9.y, t10.y, t11.y), vec4f(t12.y, t13.y, t14.y, t15.y)),
      Row(vec4f(t0.z, t1.z, t2.z, t3.z), vec4f(t4.z, t5.z, t6.z, t7.z),
          vec4f(t8.z, t9.z, t10.z, t11.z), vec4f(t12.z, t13.z, t14.z, t15.z)),
      Row(vec4f(t0.w, t1.w, t2.w, t3.w), vec4f(t4.w, t5.w, t6.w, t7.w),
          vec4f(t8.w, t9.w, t10.w, t11.w), vec4f(t12.w, t13.w, t14.w, t15.w)));
  }
  // B stored [K, N]: four vec4s per row.
  let g = n0 / 4u;
  return Blk(bRow(bb, k, g), bRow(bb, k + 1u, g), bRow(bb, k + 2u, g), bRow(bb, k + 3u, g));
}

// B[k, 4g .. 4g+15] of a [K, N] B.
fn bRow(bb: u32, k: u32, g: u32) -> Row {
  let row = bb + min(k, p.K - 1u) * p.ldb4;
  let g1 = p.ldb4 - 1u;
  return Row(b[row + min(g, g1)], b[row + min(g + 1u, g1)], b[row + min(g + 2u, g1)],
             b[row + min(g + 3u, g1)]);
}

// acc + Σ_u a4[u] · blk[k + u, :]
fn step(acc: Row, a4: vec4f, blk: Blk) -> Row {
  var r = acc;
  r.c0 = fma(vec4f(a4.x), blk.k0.c0, r.c0);
  r.c1 = fma(vec4f(a4.x), blk.k0.c1, r.c1);
  r.c2 = fma(vec4f(a4.x), blk.k0.c2, r.c2);
  r.c3 = fma(vec4f(a4.x), blk.k0.c3, r.c3);
  r.c0 = fma(vec4f(a4.y), blk.k1.c0, r.c0);
  r.c1 = fma(vec4f(a4.y), blk.k1.c1, r.c1);
  r.c2 = fma(vec4f(a4.y), blk.k1.c2, r.c2);
  r.c3 = fma(vec4f(a4.y), blk.k1.c3, r.c3);
  r.c0 = fma(vec4f(a4.z), blk.k2.c0, r.c0);
  r.c1 = fma(vec4f(a4.z), blk.k2.c1, r.c1);
  r.c2 = fma(vec4f(a4.z), blk.k2.c2, r.c2);
  r.c3 = fma(vec4f(a4.z), blk.k2.c3, r.c3);
  r.c0 = fma(vec4f(a4.w), blk.k3.c0, r.c0);
  r.c1 = fma(vec4f(a4.w), blk.k3.c1, r.c1);
  r.c2 = fma(vec4f(a4.w), blk.k3.c2, r.c2);
  r.c3 = fma(vec4f(a4.w), blk.k3.c3, r.c3);
  return r;
}

// Writes C[m, n0 .. n0+15], skipping columns past N; cb = C's first element. Whole blocks take sixteen plain
// stores; only the edge path indexes a local array. llvmpipe keeps runtime-indexed local arrays in memory: with
// them, stores cost as much as the FMAs at small K. main reaches this function for its 16 rows through a loop
// over four groups of four (picked by branches, not by an array index): calling it 16 times took 2.3× as long
// to compile, an array of the 16 rows was 1.2-1.7× slower (bench/RESULTS.md).
fn put(r: Row, cb: u32, m: u32, n0: u32) {
  let row = cb + m * p.N;
  if (n0 + 16u <= p.N) {
    // a whole block: sixteen plain stores (no runtime-indexed local array, which llvmpipe keeps in memory)
    let o = row + n0;
    put4(o, r.c0);
    put4(o + 4u, r.c1);
    put4(o + 8u, r.c2);
    put4(o + 12u, r.c3);
    return;
  }
  let v = array<vec4f, 4>(r.c0, r.c1, r.c2, r.c3);
  for (var j = 0u; j < 16u; j++) {
    let n = n0 + j;
    if (n >= p.N) { break; }
    put1(row + n, v[j / 4u][j % 4u]);
  }
}

@compute @workgroup_size(8)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let m0 = p.mOff + wid.y * 16u;
  let n0 = p.nOff + wid.x * 128u + lid.x * 16u;
  let ab = p.offA4 + wid.z * p.strideA4;
  let bb = p.offB4 + wid.z * p.strideB4;
  let cb = p.offC + wid.z * p.strideC;
  var r0: Row;
  var r1: Row;
  var r2: Row;
  var r3: Row;
  var r4: Row;
  var r5: Row;
  var r6: Row;
  var r7: Row;
  var r8: Row;
  var r9: Row;
  var r10: Row;
  var r11: Row;
  var r12: Row;
  var r13: Row;
  var r14: Row;
  var r15: Row;
  for (var k = 0u; k < p.K; k += 4u) {
    let blk = loadB(bb, k, n0);
    let a0 = loadA(ab, m0 + 0u, k);
    r0 = step(r0, a0.c0, blk);
    r1 = step(r1, a0.c1, blk);
    r2 = step(r2, a0.c2, blk);
    r3 = step(r3, a0.c3, blk);
    let a1 = loadA(ab, m0 + 4u, k);
    r4 = step(r4, a1.c0, blk);
    r5 = step(r5, a1.c1, blk);
    r6 = step(r6, a1.c2, blk);
    r7 = step(r7, a1.c3, blk);
    let a2 = loadA(ab, m0 + 8u, k);
    r8 = step(r8, a2.c0, blk);
    r9 = step(r9, a2.c1, blk);
    r10 = step(r10, a2.c2, blk);
    r11 = step(r11, a2.c3, blk);
    let a3 = loadA(ab, m0 + 12u, k);
    r12 = step(r12, a3.c0, blk);
    r13 = step(r13, a3.c1, blk);
    r14 = step(r14, a3.c2, blk);
    r15 = step(r15, a3.c3, blk);
  }
  // four groups of four rows, picked without a runtime-indexed array (llvmpipe keeps those in memory)
  for (var g = 0u; g < 4u; g++) {
    var q0 = r0;
    var q1 = r1;
    var q2 = r2;
    var q3 = r3;
    if (g == 1u) {
      q0 = r4;
      q1 = r5;
      q2 = r6;
      q3 = r7;
    } else if (g == 2u) {
      q0 = r8;
      q1 = r9;
      q2 = r10;
      q3 = r11;
    } else if (g == 3u) {
      q0 = r12;
      q1 = r13;
      q2 = r14;
      q3 = r15;
    }
    let m = m0 + 4u * g;
    if (m >= p.M) { break; }
    put(q0, cb, m, n0);
    if (m + 1u < p.M) { put(q1, cb, m + 1u, n0); }
    if (m + 2u < p.M) { put(q2, cb, m + 2u, n0); }
    if (m + 3u < p.M) { put(q3, cb, m + 3u, n0); }
  }
}
