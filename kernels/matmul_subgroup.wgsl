// matmul_subgroup.wgsl — C = alpha·op(A)·op(B) (+ C when accumulating) for CPU adapters whose SIMD lanes form
// subgroups (lavapipe/llvmpipe: 8 lanes of 256 bits): the register kernel's product with A's loads shared.
//
// On llvmpipe each invocation is one SIMD lane and every storage load is a loop over the lanes, so loads, not
// FMAs, set the speed of matmul_register.wgsl, and a load whose address is the same for every lane costs as
// much as any other. Here a workgroup is one subgroup of 8 invocations covering 32 rows × 64 columns of C:
// each lane owns 8 columns of all 32 rows (256 accumulators, as in the register kernel). Per 4 of K, the lane
// whose subgroup_invocation_id is j loads the 4×4 block of A of rows 4j .. 4j + 3 (4 vec4 loads), and each lane
// its own 4×8 block of B (8 vec4 loads);
// subgroupBroadcast (an extract and a splat on llvmpipe, no memory access) hands every lane each group's A
// block. That is 12 loads per lane for 1024 FMAs, where the register kernel takes 32.
//
// Bindings: 0 uniform Params; 1 a: array<vec4f> (read); 2 b: array<vec4f> (read); 3 c: array<f32>
//           (read_write); declared with the operand layout in common/matmul_vec4_params.wgsl.
// Dispatch: (ceil(N / 64), ceil(M / 32), batches), or part of it: invocation lid.x of workgroup (x, y, z)
//           computes rows mOff + 32·y .. + 31 and columns nOff + 64·x + 8·lid.x .. + 7 of batch z.
//           Edges: loads are clamped into the operands (A's values past K read as 0), stores past M or N are
//           skipped.
// Requires: the device feature "subgroups" and a subgroup size of at least 8, so that the 8 invocations of a
//           workgroup are one subgroup (the op checks both; the registry adds the `enable subgroups;` directive
//           where the WGSL compiler asks for it). Each value of C is summed in the same order as in
//           matmul_register.wgsl (k ascending, one fma per k), so the two kernels give identical bits.
// Overrides: TRANS_A, TRANS_B (operand layouts): each combination is its own pipeline.
// requires: common/matmul_vec4_params.wgsl
// enables: subgroups

// 8 consecutive columns of one row.
struct C8 { lo: vec4f, hi: vec4f }
// B[k .. k+3, n0 .. n0+7]: one C8 per k.
struct B8 { k0: C8, k1: C8, k2: C8, k3: C8 }
// Four consecutive rows of the 8 columns a lane owns.
struct Q4 { r0: C8, r1: C8, r2: C8, r3: C8 }

// B[k .. k+3, n0 .. n0+7]; bb = B's first vec4. Columns past N and rows past K are clamped (the matching A
// values are 0, the matching outputs are not stored).
fn loadB8(bb: u32, k: u32, n0: u32) -> B8 {
  if (TRANS_B) {
    // B stored [N, K]: one vec4 along k per column, then transposed.
    let n1 = p.N - 1u;
    let k4 = k / 4u;
    let t0 = b[bb + min(n0, n1) * p.ldb4 + k4];
    let t1 = b[bb + min(n0 + 1u, n1) * p.ldb4 + k4];
    let t2 = b[bb + min(n0 + 2u, n1) * p.ldb4 + k4];
    let t3 = b[bb + min(n0 + 3u, n1) * p.ldb4 + k4];
    let t4 = b[bb + min(n0 + 4u, n1) * p.ldb4 + k4];
    let t5 = b[bb + min(n0 + 5u, n1) * p.ldb4 + k4];
    let t6 = b[bb + min(n0 + 6u, n1) * p.ldb4 + k4];
    let t7 = b[bb + min(n0 + 7u, n1) * p.ldb4 + k4];
    return B8(
      C8(vec4f(t0.x, t1.x, t2.x, t3.x), vec4f(t4.x, t5.x, t6.x, t7.x)),
      C8(vec4f(t0.y, t1.y, t2.y, t3.y), vec4f(t4.y, t5.y, t6.y, t7.y)),
      C8(vec4f(t0.z, t1.z, t2.z, t3.z), vec4f(t4.z, t5.z, t6.z, t7.z)),
      C8(vec4f(t0.w, t1.w, t2.w, t3.w), vec4f(t4.w, t5.w, t6.w, t7.w)));
  }
  // B stored [K, N]: two vec4s per row.
  let g = n0 / 4u;
  return B8(bRow8(bb, k, g), bRow8(bb, k + 1u, g), bRow8(bb, k + 2u, g), bRow8(bb, k + 3u, g));
}

// B[k, 4g .. 4g+7] of a [K, N] B.
fn bRow8(bb: u32, k: u32, g: u32) -> C8 {
  let row = bb + min(k, p.K - 1u) * p.ldb4;
  let g1 = p.ldb4 - 1u;
  return C8(b[row + min(g, g1)], b[row + min(g + 1u, g1)]);
}

// acc + Σ_u a4[u] · blk[k + u, :], one fma per k in ascending k (the register kernel's order).
fn step8(acc: C8, a4: vec4f, blk: B8) -> C8 {
  var r = acc;
  r.lo = fma(vec4f(a4.x), blk.k0.lo, r.lo);
  r.hi = fma(vec4f(a4.x), blk.k0.hi, r.hi);
  r.lo = fma(vec4f(a4.y), blk.k1.lo, r.lo);
  r.hi = fma(vec4f(a4.y), blk.k1.hi, r.hi);
  r.lo = fma(vec4f(a4.z), blk.k2.lo, r.lo);
  r.hi = fma(vec4f(a4.z), blk.k2.hi, r.hi);
  r.lo = fma(vec4f(a4.w), blk.k3.lo, r.lo);
  r.hi = fma(vec4f(a4.w), blk.k3.hi, r.hi);
  return r;
}

// Four rows: q.r_i += A[row i, k .. k+3] · blk, with a's vec4 c_i holding row i's 4 values of k.
fn step4(q: Q4, a: Row, blk: B8) -> Q4 {
  return Q4(step8(q.r0, a.c0, blk), step8(q.r1, a.c1, blk), step8(q.r2, a.c2, blk), step8(q.r3, a.c3, blk));
}

// The 4×4 block of A that lane `lane` loaded (its rows, k .. k+3), on every lane. subgroupBroadcast takes a
// constant lane, so main calls this through the constant-lane wrappers below.
fn fromLane0(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 0u), subgroupBroadcast(h.c1, 0u), subgroupBroadcast(h.c2, 0u),
             subgroupBroadcast(h.c3, 0u));
}
fn fromLane1(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 1u), subgroupBroadcast(h.c1, 1u), subgroupBroadcast(h.c2, 1u),
             subgroupBroadcast(h.c3, 1u));
}
fn fromLane2(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 2u), subgroupBroadcast(h.c1, 2u), subgroupBroadcast(h.c2, 2u),
             subgroupBroadcast(h.c3, 2u));
}
fn fromLane3(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 3u), subgroupBroadcast(h.c1, 3u), subgroupBroadcast(h.c2, 3u),
             subgroupBroadcast(h.c3, 3u));
}
fn fromLane4(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 4u), subgroupBroadcast(h.c1, 4u), subgroupBroadcast(h.c2, 4u),
             subgroupBroadcast(h.c3, 4u));
}
fn fromLane5(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 5u), subgroupBroadcast(h.c1, 5u), subgroupBroadcast(h.c2, 5u),
             subgroupBroadcast(h.c3, 5u));
}
fn fromLane6(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 6u), subgroupBroadcast(h.c1, 6u), subgroupBroadcast(h.c2, 6u),
             subgroupBroadcast(h.c3, 6u));
}
fn fromLane7(h: Row) -> Row {
  return Row(subgroupBroadcast(h.c0, 7u), subgroupBroadcast(h.c1, 7u), subgroupBroadcast(h.c2, 7u),
             subgroupBroadcast(h.c3, 7u));
}

// Writes C[m, n0 .. n0+7], skipping rows past M and columns past N; cb = C's first element.
fn put8(v: C8, cb: u32, m: u32, n0: u32) {
  if (m >= p.M) { return; }
  let o = cb + m * p.N + n0;
  if (n0 + 8u <= p.N) {
    // whole: eight plain stores (no runtime-indexed local array, which llvmpipe keeps in memory)
    put4(o, v.lo);
    put4(o + 4u, v.hi);
    return;
  }
  let w = array<vec4f, 2>(v.lo, v.hi);
  for (var j = 0u; j < 8u; j++) {
    if (n0 + j >= p.N) { break; }
    put1(o + j, w[j / 4u][j % 4u]);
  }
}

fn putRows(q: Q4, cb: u32, m: u32, n0: u32) {
  put8(q.r0, cb, m, n0);
  put8(q.r1, cb, m + 1u, n0);
  put8(q.r2, cb, m + 2u, n0);
  put8(q.r3, cb, m + 3u, n0);
}

@compute @workgroup_size(8)
fn main(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let m0 = p.mOff + wid.y * 32u;
  let n0 = p.nOff + wid.x * 64u + lid.x * 8u;
  let ab = p.offA4 + wid.z * p.strideA4;
  let bb = p.offB4 + wid.z * p.strideB4;
  let cb = p.offC + wid.z * p.strideC;
  // q_j: rows m0 + 4j .. + 3, whose A block the lane with subgroup_invocation_id j loads
  var q0: Q4;
  var q1: Q4;
  var q2: Q4;
  var q3: Q4;
  var q4: Q4;
  var q5: Q4;
  var q6: Q4;
  var q7: Q4;
  for (var k = 0u; k < p.K; k += 4u) {
    let blk = loadB8(bb, k, n0);
    let h = loadA(ab, m0 + 4u * lane, k);
    q0 = step4(q0, fromLane0(h), blk);
    q1 = step4(q1, fromLane1(h), blk);
    q2 = step4(q2, fromLane2(h), blk);
    q3 = step4(q3, fromLane3(h), blk);
    q4 = step4(q4, fromLane4(h), blk);
    q5 = step4(q5, fromLane5(h), blk);
    q6 = step4(q6, fromLane6(h), blk);
    q7 = step4(q7, fromLane7(h), blk);
  }
  putRows(q0, cb, m0, n0);
  putRows(q1, cb, m0 + 4u, n0);
  putRows(q2, cb, m0 + 8u, n0);
  putRows(q3, cb, m0 + 12u, n0);
  putRows(q4, cb, m0 + 16u, n0);
  putRows(q5, cb, m0 + 20u, n0);
  putRows(q6, cb, m0 + 24u, n0);
  putRows(q7, cb, m0 + 28u, n0);
}
