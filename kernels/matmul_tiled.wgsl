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
// Bindings: 0 uniform Params (common/matmul_params.wgsl, as matmul_shared.wgsl's); 1 a: array<vec4f> (read);
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
// requires: common/matmul_params.wgsl

override TM: u32 = 8u;
override TN: u32 = 8u;

const BK = 8u;
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

// Vec4 i of A (is_a) or of B. At every call is_a is a constant, so once inlined the choice costs nothing.
fn operand(is_a: bool, i: u32) -> vec4f {
  if (is_a) { return a[i]; }
  return b[i];
}

// Stores v at vec4 i of A's tile (is_a) or B's.
fn tile_put(is_a: bool, i: u32, v: vec4f) {
  if (is_a) {
    As[i] = v;
  } else {
    Bs[i] = v;
  }
}

// Stores x at component j of vec4 i of A's tile (is_a) or B's.
fn tile_put1(is_a: bool, i: u32, j: u32, x: f32) {
  if (is_a) {
    As[i][j] = x;
  } else {
    Bs[i][j] = x;
  }
}

// Loads the A tile (is_a: the BM rows of A from row d0, lda apart, into As) or the B tile (the BN columns of B
// from column d0, ldb apart, into Bs) for step k0; checked: the bounds of K and of M or N applied. An operand
// whose contiguous axis is the tile's own (A with TRANS_A, B without TRANS_B) is read along it and stored as it
// is; one read along K is stored transposed.
fn load_tile(is_a: bool, t: u32, base: u32, d0: u32, k0: u32, checked: bool) {
  let BD = select(BN, BM, is_a);
  let S = select(SB, SA, is_a);
  let D = select(p.N, p.M, is_a);
  let ld = select(p.ldb, p.lda, is_a);
  let along_d = select(!TRANS_B, TRANS_A, is_a);
  // vec4s per row of the operand's part of the tile
  let per = select(BK / 4u, BD / 4u, along_d);
  for (var e = t; e < BD * BK / 4u; e += 256u) {
    // vec4 j of row i of the operand's part (i a step of K when along_d, else a row of A or a column of B)
    let i = e / per;
    let j = e % per;
    let row = select(d0, k0, along_d) + i;
    let col = select(k0, d0, along_d) + 4u * j;
    let rows = select(D, p.K, along_d);
    let cols = select(p.K, D, along_d);
    var v = vec4f(0.0);
    if (!checked) {
      v = operand(is_a, (base + row * ld + col) / 4u);
    } else if (row < rows && col < cols) {
      v = mask4(operand(is_a, (base + row * ld + col) / 4u), col, cols);
    }
    if (along_d) {
      tile_put(is_a, i * S + j, v);
    } else {
      let s = 4u * j * S + i / 4u;
      tile_put1(is_a, s, i % 4u, v.x);
      tile_put1(is_a, s + S, i % 4u, v.y);
      tile_put1(is_a, s + 2u * S, i % 4u, v.z);
      tile_put1(is_a, s + 3u * S, i % 4u, v.w);
    }
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let t = lid.y * 16u + lid.x;
  let blk = block_of(wid);
  // uniform across the workgroup: a block inside the matrix needs no checks but in the last partial step of K
  let inside = blk.m0 + BM <= p.M && blk.n0 + BN <= p.N;
  // acc[(4·g + i)·(TN/4) + h]: row 64·g + 4·lid.y + i, columns 64·h + 4·lid.x .. + 3
  var acc: array<vec4f, 16>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    let checked = !inside || k0 + BK > p.K;
    load_tile(true, t, blk.a, blk.m0, k0, checked);
    load_tile(false, t, blk.b, blk.n0, k0, checked);
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
      let m = blk.m0 + 64u * g + 4u * lid.y + i;
      if (!inside && m >= p.M) { break; }
      for (var h = 0u; h < TN / 4u; h++) {
        let v = p.alpha * acc[(4u * g + i) * (TN / 4u) + h];
        for (var j = 0u; j < 4u; j++) {
          let n = blk.n0 + 64u * h + 4u * lid.x + j;
          if (!inside && n >= p.N) { break; }
          let o = blk.c + m * p.N + n;
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
