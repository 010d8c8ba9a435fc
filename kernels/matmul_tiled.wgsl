// matmul_tiled.wgsl — C = alpha·op(A)·op(B) (+ C when accumulating) for GPUs: large block tiles through padded
// workgroup memory, vec4 loads, and workgroups inside the matrix edges running without bounds checks. Meant
// as the faster sibling of matmul_shared.wgsl; UNMEASURED on a GPU so far, so no adapter picks it by default
// (src/autograd/ops/gemm.ts: setMatmulVariant("tiled") forces it; the tests do so on lavapipe).
//
// A workgroup of 16×16 invocations computes a BM×BN block of C, BM = 16·TM, BN = 16·TN (TM, TN ∈ {4, 8}: 128×128
// blocks with 8×8 per invocation by default). K advances BK = 8 at a time: the workgroup loads a BM×8 tile of A
// and an 8×BN tile of B as vec4s along each operand's contiguous axis (one vec4 per invocation at 8×8) into
// workgroup memory laid out k-major, each row padded by one vec4 (the transposing stores of an operand read
// along K then fall in different banks); then each invocation accumulates its TM×TN micro-tile from vec4 reads
// of both tiles: rows 64·g + 4·y .. + 3 (g < TM/4) and columns 64·h + 4·x .. + 3 (h < TN/4), so neighbouring
// invocations read neighbouring vec4s. A workgroup whose block lies inside M×N loads and stores without checks,
// and every full BK step of K too; only edge blocks and the last partial step of K check (loads past an edge
// read 0, stores past it are skipped).
//
// Bindings: 0 uniform Params (below, as matmul_shared.wgsl's); 1 a: array<vec4f> (read);
//           2 b: array<vec4f> (read); 3 c: array<f32> (read_write).
// Layout:   row-major, batch-major, in floats as matmul_shared.wgsl: for batch z of this dispatch, A = a[offA +
//           z·strideA ...] is [M, K] (TRANS_A: [K, M]) with rows lda apart; B = b[offB + z·strideB ...] is [K, N]
//           (TRANS_B: [N, K]) with rows ldb apart; strideB = 0 shares B; C = c[offC + z·strideC ...] is [M, N].
//           The operands are read as vec4s, so lda, ldb, offA, offB, strideA and strideB must be multiples of 4
//           (gemm.ts uses this kernel only then); M, N and K need not be.
// Dispatch: (ceil(N / BN), ceil(M / BM), batches), or part of it: workgroup (X, Y, z) computes rows
//           mOff + BM·Y .. + BM − 1 and columns nOff + BN·X .. + BN − 1 of batch z.
// Overrides: TRANS_A, TRANS_B (operand layouts), TM, TN (micro-tile), one pipeline each.
//           Params.accumulate ≠ 0: C += alpha·AB instead of C = alpha·AB.
// Loops per invocation (lavapipe's budget, counted as if none were unrolled), TM = TN = 8: per 8 of K the step
// loop, its two load loops (2 each), the k loop (9) and per k the g and h loops (3 + 2·3): 86; the stores at
// most 3 + 2·(5 + 4·(3 + 2·5)) = 117.

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
override TM: u32 = 8u;
override TN: u32 = 8u;

const BK = 8u;
override BM = 16u * TM;
override BN = 16u * TN;
// row strides of the tiles in vec4s: one vec4 of padding per k row
override SA = BM / 4u + 1u;
override SB = BN / 4u + 1u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// As[k·SA + m/4][m%4] holds A[m0 + m, k0 + k]; Bs[k·SB + n/4][n%4] holds B[k0 + k, n0 + n].
var<workgroup> As: array<vec4f, BK * SA>;
var<workgroup> Bs: array<vec4f, BK * SB>;

// Components of v at contiguous-axis positions i, i + 1, … past `limit` set to 0.
fn mask4(v: vec4f, i: u32, limit: u32) -> vec4f {
  return select(vec4f(0.0), v, vec4u(i, i + 1u, i + 2u, i + 3u) < vec4u(limit));
}

// Loads the A tile for step k0 (checked: bounds of M and K applied).
fn load_a(t: u32, base: u32, m0: u32, k0: u32, checked: bool) {
  for (var e = t; e < BM * BK / 4u; e += 256u) {
    if (TRANS_A) {
      // A is [K, M]: vec4 along m
      let k = e / (BM / 4u);
      let mq = e % (BM / 4u);
      let row = k0 + k;
      let col = m0 + 4u * mq;
      var v = vec4f(0.0);
      if (!checked) {
        v = a[(base + row * p.lda + col) / 4u];
      } else if (row < p.K && col < p.M) {
        v = mask4(a[(base + row * p.lda + col) / 4u], col, p.M);
      }
      As[k * SA + mq] = v;
    } else {
      // A is [M, K]: vec4 along k, stored transposed
      let m = e / (BK / 4u);
      let kq = e % (BK / 4u);
      let row = m0 + m;
      let col = k0 + 4u * kq;
      var v = vec4f(0.0);
      if (!checked) {
        v = a[(base + row * p.lda + col) / 4u];
      } else if (row < p.M && col < p.K) {
        v = mask4(a[(base + row * p.lda + col) / 4u], col, p.K);
      }
      let s = 4u * kq * SA + m / 4u;
      As[s][m % 4u] = v.x;
      As[s + SA][m % 4u] = v.y;
      As[s + 2u * SA][m % 4u] = v.z;
      As[s + 3u * SA][m % 4u] = v.w;
    }
  }
}

// Loads the B tile for step k0 (checked: bounds of K and N applied).
fn load_b(t: u32, base: u32, n0: u32, k0: u32, checked: bool) {
  for (var e = t; e < BN * BK / 4u; e += 256u) {
    if (!TRANS_B) {
      // B is [K, N]: vec4 along n
      let k = e / (BN / 4u);
      let nq = e % (BN / 4u);
      let row = k0 + k;
      let col = n0 + 4u * nq;
      var v = vec4f(0.0);
      if (!checked) {
        v = b[(base + row * p.ldb + col) / 4u];
      } else if (row < p.K && col < p.N) {
        v = mask4(b[(base + row * p.ldb + col) / 4u], col, p.N);
      }
      Bs[k * SB + nq] = v;
    } else {
      // B is [N, K]: vec4 along k, stored transposed
      let n = e / (BK / 4u);
      let kq = e % (BK / 4u);
      let row = n0 + n;
      let col = k0 + 4u * kq;
      var v = vec4f(0.0);
      if (!checked) {
        v = b[(base + row * p.ldb + col) / 4u];
      } else if (row < p.N && col < p.K) {
        v = mask4(b[(base + row * p.ldb + col) / 4u], col, p.K);
      }
      let s = 4u * kq * SB + n / 4u;
      Bs[s][n % 4u] = v.x;
      Bs[s + SB][n % 4u] = v.y;
      Bs[s + 2u * SB][n % 4u] = v.z;
      Bs[s + 3u * SB][n % 4u] = v.w;
    }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let t = lid.y * 16u + lid.x;
  let m0 = p.mOff + wid.y * BM;
  let n0 = p.nOff + wid.x * BN;
  let ab = p.offA + wid.z * p.strideA;
  let bb = p.offB + wid.z * p.strideB;
  let cb = p.offC + wid.z * p.strideC;
  // uniform across the workgroup: a block inside the matrix needs no checks but in the last partial step of K
  let inside = m0 + BM <= p.M && n0 + BN <= p.N;
  // acc[(4·g + i)·(TN/4) + h]: row 64·g + 4·lid.y + i, columns 64·h + 4·lid.x .. + 3
  var acc: array<vec4f, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    let checked = !inside || k0 + BK > p.K;
    load_a(t, ab, m0, k0, checked);
    load_b(t, bb, n0, k0, checked);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      for (var g = 0u; g < TM / 4u; g++) {
        let av = As[k * SA + 16u * g + lid.y];
        for (var h = 0u; h < TN / 4u; h++) {
          let bv = Bs[k * SB + 16u * h + lid.x];
          let r = 4u * g * (TN / 4u) + h;
          acc[r] = fma(vec4f(av.x), bv, acc[r]);
          acc[r + TN / 4u] = fma(vec4f(av.y), bv, acc[r + TN / 4u]);
          acc[r + 2u * (TN / 4u)] = fma(vec4f(av.z), bv, acc[r + 2u * (TN / 4u)]);
          acc[r + 3u * (TN / 4u)] = fma(vec4f(av.w), bv, acc[r + 3u * (TN / 4u)]);
        }
      }
    }
    workgroupBarrier();
  }
  for (var g = 0u; g < TM / 4u; g++) {
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + 64u * g + 4u * lid.y + i;
      if (!inside && m >= p.M) { break; }
      for (var h = 0u; h < TN / 4u; h++) {
        let v = p.alpha * acc[(4u * g + i) * (TN / 4u) + h];
        for (var j = 0u; j < 4u; j++) {
          let n = n0 + 64u * h + 4u * lid.x + j;
          if (!inside && n >= p.N) { break; }
          let o = cb + m * p.N + n;
          if (p.accumulate != 0u) {
            c[o] += v[j];
          } else {
            c[o] = v[j];
          }
        }
      }
    }
  }
}
