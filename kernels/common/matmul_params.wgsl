// common/matmul_params.wgsl — the block matmul kernels' dispatch parameters, operand layouts and block origin
// (shared; `// requires: common/matmul_params.wgsl`): matmul_shared, matmul_tiled.
//
// C = alpha·op(A)·op(B) (+ C when accumulate ≠ 0) in floats: for batch z of a dispatch, A = a[offA + z·strideA
// ...] is [M, K] (TRANS_A: [K, M]) with rows lda apart, B = b[offB + z·strideB ...] is [K, N] (TRANS_B: [N, K])
// with rows ldb apart (strideB = 0 shares B), C = c[offC + z·strideC ...] is [M, N]; workgroup (X, Y, z)
// computes rows mOff + BM·Y .. + BM − 1 and columns nOff + BN·X .. + BN − 1 of batch z. The including kernel
// declares TM and TN (rows and columns per invocation of its 16×16 invocations: BM = 16·TM, BN = 16·TN).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  lda: u32,
  ldb: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  offA: u32,
  offB: u32,
  offC: u32,
  mOff: u32,
  nOff: u32,
  accumulate: u32,
  alpha: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override BM = 16u * TM;
override BN = 16u * TN;

// Workgroup wid's block: the first row m0 and column n0 of C it computes, and where its batch's A, B and C start
// (in floats).
struct Block { m0: u32, n0: u32, a: u32, b: u32, c: u32 }

fn block_of(wid: vec3u) -> Block {
  return Block(
    p.mOff + wid.y * BM,
    p.nOff + wid.x * BN,
    p.offA + wid.z * p.strideA,
    p.offB + wid.z * p.strideB,
    p.offC + wid.z * p.strideC,
  );
}
