// matmul_shared.wgsl — C = alpha·op(A)·op(B) (+ C when accumulating), tiled through workgroup (shared) memory
// for GPUs.
//
// A workgroup of 16×16 invocations computes a BM×BN block of C, BM = 16·TM and BN = 16·TN (TM, TN ∈ {4, 8}).
// K advances BK = 16 at a time: the workgroup copies a BM×16 tile of A and a 16×BN tile of B into workgroup
// memory (read along each operand's contiguous axis, so that neighbouring invocations read neighbouring
// addresses), then each invocation accumulates its TM×TN micro-tile from vec4 reads of both tiles: rows
// 64·g + 4·y .. + 3 for g < TM/4 and columns 64·h + 4·x .. + 3 for h < TN/4, so that the vec4 reads of
// neighbouring invocations are contiguous. Operands need no alignment or padding: loads past the matrix edges
// read 0 and stores past them are skipped.
//
// Bindings: 0 uniform Params (common/matmul_params.wgsl); 1 a: array<f32> (read); 2 b: array<f32> (read);
//           3 c: array<f32> (read_write).
// Layout:   row-major, batch-major. For batch z of this dispatch: A = a[offA + z·strideA ...] is [M, K]
//           (TRANS_A: [K, M]) with rows lda apart; B = b[offB + z·strideB ...] is [K, N] (TRANS_B: [N, K]) with
//           rows ldb apart; strideB = 0 shares B; C = c[offC + z·strideC ...] is [M, N]. lda and ldb may exceed
//           the row length: a window of K (the op's windows on CPU adapters, under lavapipe's loop limit) is the
//           columns offA.. (TRANS_A: rows) of a longer A, and likewise for B.
// Dispatch: (ceil(N / BN), ceil(M / BM), batches), or part of it: workgroup (X, Y, z) computes rows
//           mOff + BM·Y .. + BM − 1 and columns nOff + BN·X .. + BN − 1 of batch z.
// Overrides: TRANS_A, TRANS_B (operand layouts), TM, TN (micro-tile), one pipeline each.
//           Params.accumulate ≠ 0: C += alpha·AB instead of C = alpha·AB.
// requires: common/matmul_params.wgsl

override TM: u32 = 4u;
override TN: u32 = 4u;

const BK = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// As[k·BM/4 + m/4][m%4] holds A[m0 + m, k0 + k]; Bs[k·BN/4 + n/4][n%4] holds B[k0 + k, n0 + n].
var<workgroup> As: array<vec4f, BK * BM / 4u>;
var<workgroup> Bs: array<vec4f, BK * BN / 4u>;

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  return a[select(base + m * p.lda + k, base + k * p.lda + m, TRANS_A)];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  return b[select(base + k * p.ldb + n, base + n * p.ldb + k, TRANS_B)];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let t = lid.y * 16u + lid.x;
  let blk = block_of(wid);
  // acc[(4·g + i)·2 + h]: row 64·g + 4·lid.y + i, columns 64·h + 4·lid.x .. + 3
  var acc: array<vec4f, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    for (var i = 0u; i < BM * BK / 256u; i++) {
      let e = t + 256u * i;
      // element (m, k) of the A tile; consecutive e walk A's contiguous axis
      let am = select(e / BK, e % BM, TRANS_A);
      let ak = select(e % BK, e / BM, TRANS_A);
      As[ak * (BM / 4u) + am / 4u][am % 4u] = loadA(blk.a, blk.m0 + am, k0 + ak);
    }
    for (var i = 0u; i < BN * BK / 256u; i++) {
      let e = t + 256u * i;
      let bn = select(e % BN, e / BK, TRANS_B);
      let bk = select(e / BN, e % BK, TRANS_B);
      Bs[bk * (BN / 4u) + bn / 4u][bn % 4u] = loadB(blk.b, k0 + bk, blk.n0 + bn);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      for (var g = 0u; g < TM / 4u; g++) {
        let av = As[k * (BM / 4u) + 16u * g + lid.y];
        for (var h = 0u; h < TN / 4u; h++) {
          let bv = Bs[k * (BN / 4u) + 16u * h + lid.x];
          acc[(4u * g) * 2u + h] = fma(vec4f(av.x), bv, acc[(4u * g) * 2u + h]);
          acc[(4u * g + 1u) * 2u + h] = fma(vec4f(av.y), bv, acc[(4u * g + 1u) * 2u + h]);
          acc[(4u * g + 2u) * 2u + h] = fma(vec4f(av.z), bv, acc[(4u * g + 2u) * 2u + h]);
          acc[(4u * g + 3u) * 2u + h] = fma(vec4f(av.w), bv, acc[(4u * g + 3u) * 2u + h]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var g = 0u; g < TM / 4u; g++) {
    for (var i = 0u; i < 4u; i++) {
      let m = blk.m0 + 64u * g + 4u * lid.y + i;
      if (m >= p.M) { break; }
      for (var h = 0u; h < TN / 4u; h++) {
        for (var j = 0u; j < 4u; j++) {
          let n = blk.n0 + 64u * h + 4u * lid.x + j;
          if (n >= p.N) { break; }
          let o = blk.c + m * p.N + n;
          let v = p.alpha * acc[(4u * g + i) * 2u + h][j];
          if (p.accumulate != 0u) {
            c[o] += v;
          } else {
            c[o] = v;
          }
        }
      }
    }
  }
}
