/**
 * Matrix multiplication: `matmul(a, b, {transA, transB})` = op(A)·op(B) with op(X) = X or Xᵀ, batched over the
 * leading dims, and the raw `matmulInto(out, a, b, {transA, transB, accumulate, alpha})` that writes (or adds)
 * alpha·op(A)·op(B) into an existing tensor, for backward passes and gradient accumulation.
 *
 * Shapes: a is [..., M, K] ([..., K, M] with transA), b is [..., K, N] ([..., N, K] with transB); either both
 * have the same batch dims, or b is 2-D and shared by every batch of a (x[B, T, C]·W). The result is
 * [..., M, N].
 *
 * Backward, for Y = op(A)·op(B) and gradient dY: d op(A) = dY·op(B)ᵀ and d op(B) = op(A)ᵀ·dY, so
 *   dA = dY·op(B)ᵀ  (A stored [M, K])      dA = op(B)·dYᵀ  (transA: A stored [K, M])
 *   dB = op(A)ᵀ·dY  (B stored [K, N])      dB = dYᵀ·op(A)  (transB: B stored [N, K])
 * each one matmul with the transposes chosen so that no operand is ever copied; a shared b gets the sum over
 * the batch (one matmul over the flattened batch when a is not transposed, else accumulated batch by batch).
 *
 * Kernels: kernels/matmul_register.wgsl (each invocation a 16×16 register block; for CPU adapters such as
 * lavapipe/llvmpipe, where an invocation is one SIMD lane) and kernels/matmul_shared.wgsl (64×64 blocks
 * through workgroup memory; for GPUs). `setMatmulVariant` picks one; "auto" (the default) picks by adapter.
 * With the register kernel, a product of few rows by a transposed B (x·Wᵀ while decoding: one new token per
 * sequence) goes to kernels/matmul_gemv.wgsl instead (8 columns of one row per invocation, so no block rows are
 * wasted), for M ≤ `GEMV_MAX_ROWS`.
 * Both read operands as vec4 rows: an operand whose contiguous axis is not a multiple of 4 is
 * first copied into zero-padded rows (kernels/matmul_pad.wgsl), O(size) work against the O(M·N·K) product.
 *
 * Large operands: each storage binding covers at most maxStorageBufferBindingSize bytes, so a batch that does
 * not fit is split into dispatches over batch ranges (and rows/columns past 65535 workgroups into more
 * dispatches); a single A or C matrix larger than the limit (logits of a long input) is computed in bands of
 * rows, each bound on its own, when A is not transposed; otherwise, or when B alone is larger than the limit,
 * a GpuLimitError names the shape.
 *
 * Long K on CPU adapters: lavapipe stops an invocation silently after about 65 535 loop iterations in all
 * (src/gpu/loop_budget.ts), and each invocation walks the whole of K (register kernel: K/4 steps, measured wrong
 * from K = 262 136; shared kernel: 18 per 16 of K as compiled, wrong from K = 58 240). There the product
 * runs in windows of K, one dispatch each, later windows adding into C (`kWindows`).
 */
import { alignedRange, BindingCap, rowsPerBinding } from "../../gpu/binding.ts";
import { cpuKernels, gpu, isCpuAdapter } from "../../gpu/device.ts";
import { GpuLimitError } from "../../gpu/errors.ts";
import { kernel } from "../../gpu/kernel.ts";
import { LOOP_BUDGET, loopLimited } from "../../gpu/loop_budget.ts";
import { clearBuffer, dispatch, type DispatchSpec, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const REGISTER = kernel("matmul_register.wgsl");
const GEMV = kernel("matmul_gemv.wgsl");
const SHARED = kernel("matmul_shared.wgsl");
const PAD = kernel("matmul_pad.wgsl");

/** The two matmul kernels: register-tiled (CPU adapters) and shared-memory-tiled (GPUs). */
export type MatmulVariant = "register" | "shared";

export interface MatmulOptions {
  /** a is stored [..., K, M] and used transposed. */
  transA?: boolean;
  /** b is stored [..., N, K] and used transposed. */
  transB?: boolean;
}

export interface MatmulIntoOptions extends MatmulOptions {
  /** Add into `out` (out += alpha·op(A)·op(B)) instead of overwriting it. */
  accumulate?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
}

let setting: MatmulVariant | "auto" = "auto";
/** Products of at most this many rows by a transposed B use the row kernel on CPU adapters (see the header). */
export const GEMV_MAX_ROWS = 4;
let gemvMaxRows = GEMV_MAX_ROWS;

/** Sets the most rows that use the row kernel (0: never; tests and benchmarks); returns the previous value. */
export function setGemvMaxRows(rows: number): number {
  const prev = gemvMaxRows;
  gemvMaxRows = rows;
  return prev;
}
const bindingCap = new BindingCap("setMatmulLimits: maxBindingBytes", 256);
let workgroupCap: number | null = null;

/**
 * Chooses the matmul kernel for every later matmul: "register", "shared", or "auto" (the default: register-tiled
 * on CPU adapters — a fallback adapter, or one named llvmpipe, lavapipe or SwiftShader — else shared-memory).
 */
export function setMatmulVariant(v: MatmulVariant | "auto"): void {
  if (v !== "register" && v !== "shared" && v !== "auto") {
    throw new RangeError(
      `setMatmulVariant: expected "register", "shared" or "auto", got ${JSON.stringify(v)}`,
    );
  }
  setting = v;
}

/** The kernel "auto" picks for an adapter. */
export function defaultMatmulVariant(
  info: { adapterName: string; isFallbackAdapter: boolean },
): MatmulVariant {
  return isCpuAdapter(info) ? "register" : "shared";
}

/**
 * The kernel matmul uses now: a `setMatmulVariant` choice, else the CPU kernels' choice (`cpuKernels()`: the
 * adapter's kind, or what `setCpuKernels` forces, as for every kernel with a CPU and a GPU variant).
 */
export function matmulVariant(): MatmulVariant {
  if (setting !== "auto") return setting;
  return cpuKernels() ? "register" : "shared";
}

/** Caps below the device's limits, for tests of the splitting paths (null fields: the device's own). */
export interface MatmulLimits {
  /** Bytes one storage binding may cover (device: maxStorageBufferBindingSize). */
  maxBindingBytes?: number | null;
  /** Workgroups per dispatch dimension (device: maxComputeWorkgroupsPerDimension). */
  maxWorkgroups?: number | null;
}

/**
 * Lowers the limits matmul plans its dispatches with below the device's (null: the device's own). Tests use it
 * to exercise the splitting of large batches and grids without allocating hundreds of MiB.
 */
export function setMatmulLimits(limits: MatmulLimits | null): void {
  const b = limits?.maxBindingBytes ?? null;
  const w = limits?.maxWorkgroups ?? null;
  bindingCap.check(b);
  if (w !== null && (!Number.isInteger(w) || w < 1)) {
    throw new RangeError(`setMatmulLimits: maxWorkgroups must be a positive integer or null, got ${w}`);
  }
  bindingCap.set(b);
  workgroupCap = w;
}

function workgroupLimit(): number {
  const dev = gpu().info.limits.maxComputeWorkgroupsPerDimension;
  return workgroupCap === null ? dev : Math.min(dev, workgroupCap);
}

/** The shapes of one (batched) product. */
interface Plan {
  batchShape: number[];
  batch: number;
  M: number;
  N: number;
  K: number;
  /** b is 2-D and used by every batch of a. */
  sharedB: boolean;
}

function plan(a: Tensor, b: Tensor, transA: boolean, transB: boolean, who: string): Plan {
  a.assertAlive();
  b.assertAlive();
  const desc = `a [${a.shape}]${transA ? " (transA)" : ""}, b [${b.shape}]${transB ? " (transB)" : ""}`;
  if (a.dtype !== "f32" || b.dtype !== "f32") {
    throw new TypeError(`${who}: expected f32 tensors, got ${a.dtype} and ${b.dtype} (${desc})`);
  }
  if (a.ndim < 2 || b.ndim < 2) {
    throw new RangeError(`${who}: expected tensors of at least 2 dims, got ${desc}`);
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const Kb = transB ? bc : br;
  const N = transB ? br : bc;
  if (K !== Kb) {
    throw new RangeError(
      `${who}: inner dimensions differ: op(a) is [${M}, ${K}] and op(b) is [${Kb}, ${N}] (${desc})`,
    );
  }
  const batchShape = a.shape.slice(0, -2);
  const sharedB = b.ndim === 2;
  if (!sharedB) {
    const bb = b.shape.slice(0, -2);
    if (bb.length !== batchShape.length || bb.some((d, i) => d !== batchShape[i])) {
      throw new RangeError(
        `${who}: batch dims differ: a has [${batchShape}], b has [${bb}]; expected the same batch dims, ` +
          `or a 2-D b shared by every batch (${desc})`,
      );
    }
  }
  const batch = batchShape.reduce((x, y) => x * y, 1);
  return { batchShape, batch, M, N, K, sharedB };
}

/** A matrix operand: a tensor's storage from element `off`, batch i at off + i·stride (stride 0: shared). */
interface Operand {
  t: Tensor;
  off: number;
  stride: number;
}

interface Gemm {
  a: Operand;
  b: Operand;
  c: Operand;
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  alpha: number;
}

/** The binding of `count` batches of an operand from batch z0, aligned for the device; offsets in elements. */
function bindRange(op: Operand, z0: number, count: number, matrixElems: number) {
  const start = (op.off + z0 * op.stride) * 4;
  const end = start + ((count - 1) * op.stride + matrixElems) * 4;
  return alignedRange(op.t.storage.buffer, start, end);
}

/** How many batches from z0 fit every binding (0 if not even one). */
function batchesThatFit(ops: { op: Operand; elems: number }[], z0: number, left: number): number {
  const limit = bindingCap.limit();
  let n = Math.min(left, workgroupLimit());
  for (const { op, elems } of ops) {
    const first = bindRange(op, z0, 1, elems);
    if (first.bytes > limit) return 0;
    if (op.stride > 0) n = Math.min(n, 1 + Math.floor((limit - first.bytes) / (op.stride * 4)));
  }
  return n;
}

function tooLarge(name: string, shape: number[], elems: number): GpuLimitError {
  const { info } = gpu();
  return new GpuLimitError(
    `matmul: operand ${name} of shape [${shape}] (one matrix of the batch) needs ${elems * 4} bytes in one ` +
      `storage binding, more than this device allows (${bindingCap.limit()} bytes, maxStorageBufferBindingSize of ` +
      `${info.adapterName}); split it into smaller matrices.`,
  );
}

/** Copies rows × cols (contiguous from element `off`) into a new tensor of rows × ld, zero-padding each row. */
function padRows(src: Tensor, off: number, rows: number, cols: number, ld: number): Tensor {
  const out = empty([rows * ld]);
  const limit = bindingCap.limit();
  const maxRows = Math.max(1, Math.floor((limit - 256) / (ld * 4)));
  for (let r0 = 0; r0 < rows; r0 += maxRows) {
    const n = Math.min(maxRows, rows - r0);
    const s = bindRange({ t: src, off, stride: cols }, r0, n, cols);
    const d = bindRange({ t: out, off: 0, stride: ld }, r0, n, ld);
    if (s.bytes > limit || d.bytes > limit) throw tooLarge("row", [cols], ld);
    if (sink) throw new RangeError("matmulDispatches: operands whose contiguous axis is not a multiple of 4");
    dispatch({
      kernel: PAD,
      params: { n: n * ld, cols, ld, srcOff: s.elemOff, dstOff: d.elemOff },
      buffers: [s.binding, d.binding],
      workgroups: grid1d(n * ld, 256),
    });
  }
  return out;
}

/** Where gemm's dispatches go: the queue, or a list (matmulDispatches). */
let sink: DispatchSpec[] | null = null;

function issue(spec: DispatchSpec): void {
  if (sink) sink.push(spec);
  else dispatch(spec);
}

/** Runs one (batched) product on the GPU: C = alpha·op(A)·op(B) (+ C). */
function gemm(g: Gemm): void {
  const { M, N, K, batch } = g;
  if (batch === 0 || M === 0 || N === 0) return;
  if (K === 0) {
    if (sink) throw new RangeError("matmulDispatches: K = 0");
    if (!g.accumulate) clearBuffer(g.c.t.storage.buffer, g.c.off * 4, batch * M * N * 4);
    return;
  }
  if (!g.transA && !oneMatrixFits(g)) {
    splitRows(g);
    return;
  }
  if (matmulVariant() === "register") gemmRegister(g);
  else gemmShared(g);
}

/** Whether one matrix of A and one of C fit a storage binding each (what a dispatch must bind at least). */
function oneMatrixFits(g: Gemm): boolean {
  const limit = bindingCap.limit();
  return bindRange(g.a, 0, 1, g.M * g.K).bytes <= limit && bindRange(g.c, 0, 1, g.M * g.N).bytes <= limit;
}

/**
 * A product whose A or C matrix is larger than one storage binding (logits [T, V] of a long input): each batch
 * in bands of rows, every band's A and C rows bound on their own (A's rows are contiguous when A is not
 * transposed, and so are C's). B must fit whole.
 */
function splitRows(g: Gemm): void {
  // a band's binding may start up to one alignment before its first element
  const rows = rowsPerBinding(4 * Math.max(g.K, g.N, 1), bindingCap.limit());
  if (rows < 1) {
    throw tooLarge(g.K > g.N ? "a" : "out", [1, Math.max(g.K, g.N)], Math.max(g.K, g.N));
  }
  for (let z = 0; z < g.batch; z++) {
    for (let m0 = 0; m0 < g.M; m0 += rows) {
      const M = Math.min(rows, g.M - m0);
      gemm({
        ...g,
        a: { t: g.a.t, off: g.a.off + z * g.a.stride + m0 * g.K, stride: 0 },
        b: { t: g.b.t, off: g.b.off + z * g.b.stride, stride: 0 },
        c: { t: g.c.t, off: g.c.off + z * g.c.stride + m0 * g.N, stride: 0 },
        M,
        batch: 1,
      });
    }
  }
}

const ceil4 = (n: number) => Math.ceil(n / 4) * 4;

/**
 * K per window of the register kernel: its invocation runs ceil(K/4) + 1 steps, then at most 5 + 16·17 in the
 * stores (the edge loop of each of 16 rows), counted as if nothing were unrolled. A multiple of 16.
 */
export const REGISTER_K_WINDOW = Math.floor((4 * (LOOP_BUDGET - 278)) / 16) * 16;

/**
 * K per window of the shared kernel (TM = TN = 4): per 16 of K the tile loop, its two load loops (4 + 1 each), the
 * k loop (16 + 1) and, per k, the g and h loops (2 each): 92; then at most 35 in the stores. A multiple of 16.
 */
export const SHARED_K_WINDOW = Math.floor((LOOP_BUDGET - 35) / 92) * 16;

/** [k0, count] windows of [0, K): one window unless the adapter stops long invocations and K exceeds `size`. */
function kWindows(K: number, size: number): [number, number][] {
  if (K <= size || !loopLimited()) return [[0, K]];
  const out: [number, number][] = [];
  for (let k0 = 0; k0 < K; k0 += size) out.push([k0, Math.min(size, K - k0)]);
  return out;
}

function gemmRegister(g: Gemm): void {
  const { M, N, K, batch, transA, transB } = g;
  const aRows = transA ? K : M;
  const aCols = transA ? M : K;
  const bRows = transB ? N : K;
  const bCols = transB ? K : N;
  const temps: Tensor[] = [];
  // vec4 operands: contiguous axis a multiple of 4 and every matrix starting on a vec4 boundary
  const prepare = (op: Operand, rows: number, cols: number): { op: Operand; ld: number } => {
    const ld = ceil4(cols);
    if (cols % 4 === 0 && op.off % 4 === 0 && op.stride % 4 === 0) return { op, ld };
    const count = op.stride === 0 ? 1 : batch;
    if (op.stride !== 0 && op.stride !== rows * cols) {
      throw new Error("matmul: internal error, strided batch");
    }
    const t = padRows(op.t, op.off, count * rows, cols, ld);
    temps.push(t);
    return { op: { t, off: 0, stride: op.stride === 0 ? 0 : rows * ld }, ld };
  };
  const A = prepare(g.a, aRows, aCols);
  const B = prepare(g.b, bRows, bCols);
  const aElems = aRows * A.ld;
  const bElems = bRows * B.ld;
  const ops = [
    { op: A.op, elems: aElems, name: "a", shape: [aRows, aCols] },
    { op: B.op, elems: bElems, name: "b", shape: [bRows, bCols] },
    { op: g.c, elems: M * N, name: "out", shape: [M, N] },
  ];
  const maxWg = workgroupLimit();
  const constants = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 };
  // few rows times Bᵀ: the row kernel (its loop runs K/4 + 1 times: within lavapipe's loop budget)
  const rowKernel = transB && !transA && M <= gemvMaxRows && A.ld / 4 + 1 <= LOOP_BUDGET;
  const windows = rowKernel ? [[0, K]] : kWindows(K, REGISTER_K_WINDOW);
  const blockRows = rowKernel ? 1 : 16;
  const blockCols = rowKernel ? 64 : 128;
  for (let z0 = 0; z0 < batch;) {
    const nz = batchesThatFit(ops, z0, batch - z0);
    if (nz === 0) {
      const bad = ops.find((o) => bindRange(o.op, z0, 1, o.elems).bytes > bindingCap.limit())!;
      throw tooLarge(bad.name, bad.shape, bad.elems);
    }
    const ba = bindRange(A.op, z0, nz, aElems);
    const bb = bindRange(B.op, z0, nz, bElems);
    const bc = bindRange(g.c, z0, nz, M * N);
    for (let m0 = 0; m0 < M; m0 += blockRows * maxWg) {
      for (let n0 = 0; n0 < N; n0 += blockCols * maxWg) {
        // a window [k0, k0 + kw) of K: columns k0.. of A (transA: rows), rows k0.. of B (transB: columns)
        for (const [k0, kw] of windows) {
          issue({
            kernel: rowKernel ? GEMV : REGISTER,
            constants: rowKernel ? {} : constants,
            params: {
              M,
              N,
              K: kw,
              lda4: A.ld / 4,
              ldb4: B.ld / 4,
              strideA4: A.op.stride / 4,
              strideB4: B.op.stride / 4,
              strideC: g.c.stride,
              offA4: ba.elemOff / 4 + (transA ? (k0 * A.ld) / 4 : k0 / 4),
              offB4: bb.elemOff / 4 + (transB ? k0 / 4 : (k0 * B.ld) / 4),
              offC: bc.elemOff,
              mOff: m0,
              nOff: n0,
              accumulate: g.accumulate || k0 > 0,
              alpha: g.alpha,
            },
            buffers: [ba.binding, bb.binding, bc.binding],
            workgroups: [
              Math.ceil(Math.min(N - n0, blockCols * maxWg) / blockCols),
              Math.ceil(Math.min(M - m0, blockRows * maxWg) / blockRows),
              nz,
            ],
          });
        }
      }
    }
    z0 += nz;
  }
  for (const t of temps) t.dispose();
}

/**
 * The shared kernel's micro-tile per invocation (rows TM × columns TN; a workgroup covers 16·TM × 16·TN).
 * Measured on an H100 (bench/RESULTS.md): 4×4 is best on the transformer shapes (N = 576), 8×4 gains ≤ 8% on
 * square 1024³–2048³ products only.
 */
const SHARED_TILE = { TM: 4, TN: 4 };

function gemmShared(g: Gemm): void {
  const { M, N, K, batch, transA, transB } = g;
  const ops = [
    { op: g.a, elems: M * K, name: "a", shape: transA ? [K, M] : [M, K] },
    { op: g.b, elems: K * N, name: "b", shape: transB ? [N, K] : [K, N] },
    { op: g.c, elems: M * N, name: "out", shape: [M, N] },
  ];
  const maxWg = workgroupLimit();
  const { TM, TN } = SHARED_TILE;
  const BM = 16 * TM;
  const BN = 16 * TN;
  const constants = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, TM, TN };
  const windows = kWindows(K, SHARED_K_WINDOW);
  for (let z0 = 0; z0 < batch;) {
    const nz = batchesThatFit(ops, z0, batch - z0);
    if (nz === 0) {
      const bad = ops.find((o) => bindRange(o.op, z0, 1, o.elems).bytes > bindingCap.limit())!;
      throw tooLarge(bad.name, bad.shape, bad.elems);
    }
    const ba = bindRange(g.a, z0, nz, M * K);
    const bb = bindRange(g.b, z0, nz, K * N);
    const bc = bindRange(g.c, z0, nz, M * N);
    for (let m0 = 0; m0 < M; m0 += BM * maxWg) {
      for (let n0 = 0; n0 < N; n0 += BN * maxWg) {
        // a window [k0, k0 + kw) of K: columns k0.. of A (transA: rows), rows k0.. of B (transB: columns)
        for (const [k0, kw] of windows) {
          issue({
            kernel: SHARED,
            constants,
            params: {
              M,
              N,
              K: kw,
              lda: transA ? M : K,
              ldb: transB ? K : N,
              strideA: g.a.stride,
              strideB: g.b.stride,
              strideC: g.c.stride,
              offA: ba.elemOff + (transA ? k0 * M : k0),
              offB: bb.elemOff + (transB ? k0 : k0 * N),
              offC: bc.elemOff,
              mOff: m0,
              nOff: n0,
              accumulate: g.accumulate || k0 > 0,
              alpha: g.alpha,
            },
            buffers: [ba.binding, bb.binding, bc.binding],
            workgroups: [
              Math.ceil(Math.min(N - n0, BN * maxWg) / BN),
              Math.ceil(Math.min(M - m0, BM * maxWg) / BM),
              nz,
            ],
          });
        }
      }
    }
    z0 += nz;
  }
}

/** The product of a planned matmul into `out` (whose size must be batch·M·N), folding a shared b's batch. */
function runPlan(p: Plan, out: Tensor, a: Tensor, b: Tensor, o: Required<MatmulIntoOptions>): void {
  const fold = p.sharedB && !o.transA; // [batch·M, K]·B is one product
  const batch = fold ? 1 : p.batch;
  const M = fold ? p.batch * p.M : p.M;
  gemm({
    a: { t: a, off: 0, stride: M * p.K },
    b: { t: b, off: 0, stride: p.sharedB ? 0 : p.K * p.N },
    c: { t: out, off: 0, stride: M * p.N },
    M,
    N: p.N,
    K: p.K,
    batch,
    transA: o.transA,
    transB: o.transB,
    accumulate: o.accumulate,
    alpha: o.alpha,
  });
}

function resolve(opts: MatmulIntoOptions): Required<MatmulIntoOptions> {
  const alpha = opts.alpha ?? 1;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw new RangeError(`matmul: alpha must be a finite number, got ${alpha}`);
  }
  return { transA: !!opts.transA, transB: !!opts.transB, accumulate: !!opts.accumulate, alpha };
}

/**
 * out = alpha·op(A)·op(B), or out += alpha·op(A)·op(B) with `accumulate`, without recording a graph. `out` must
 * hold batch·M·N elements (any shape of that size, e.g. [..., M, N]) and must not share storage with a or b.
 */
export function matmulInto(out: Tensor, a: Tensor, b: Tensor, opts: MatmulIntoOptions = {}): void {
  const o = resolve(opts);
  const p = plan(a, b, o.transA, o.transB, "matmulInto");
  out.assertAlive();
  if (out.dtype !== "f32") throw new TypeError(`matmulInto: out must be f32, got ${out.dtype}`);
  if (out.size !== p.batch * p.M * p.N) {
    throw new RangeError(
      `matmulInto: out [${out.shape}] has ${out.size} elements, expected [${[...p.batchShape, p.M, p.N]}] ` +
        `(${p.batch * p.M * p.N}) for a [${a.shape}] and b [${b.shape}]`,
    );
  }
  if (out.storage === a.storage || out.storage === b.storage) {
    throw new RangeError("matmulInto: out must not share storage with a or b");
  }
  runPlan(p, out, a, b, o);
}

/**
 * The dispatches `matmulInto(out, a, b, opts)` would record, without recording them (benchmarks replay them
 * under GPU timestamps). Operands that would need padding (contiguous axis not a multiple of 4 under the
 * register kernel) and K = 0 are refused.
 */
export function matmulDispatches(
  out: Tensor,
  a: Tensor,
  b: Tensor,
  opts: MatmulIntoOptions = {},
): DispatchSpec[] {
  const list: DispatchSpec[] = [];
  sink = list;
  try {
    matmulInto(out, a, b, opts);
  } finally {
    sink = null;
  }
  return list;
}

/** op(A)·op(B) into a new tensor, without recording a graph. */
export function matmulRaw(a: Tensor, b: Tensor, opts: MatmulIntoOptions = {}): Tensor {
  const o = resolve({ ...opts, accumulate: false });
  const p = plan(a, b, o.transA, o.transB, "matmul");
  const out = empty([...p.batchShape, p.M, p.N]);
  runPlan(p, out, a, b, o);
  return out;
}

/** Gradient of a b shared by every batch of a transposed a: Σ_z of per-batch products, accumulated. */
function sharedGradTransA(a: Tensor, dy: Tensor, p: Plan, transB: boolean): Tensor {
  // dB = Σ_z A_z·dY_z ([K, N]) or, with transB, Σ_z dY_zᵀ·A_zᵀ ([N, K]); A_z is stored [K, M], dY_z [M, N].
  const out = empty(transB ? [p.N, p.K] : [p.K, p.N]);
  for (let z = 0; z < p.batch; z++) {
    const aOp = { t: a, off: z * p.K * p.M, stride: 0 };
    const dOp = { t: dy, off: z * p.M * p.N, stride: 0 };
    gemm({
      a: transB ? dOp : aOp,
      b: transB ? aOp : dOp,
      c: { t: out, off: 0, stride: 0 },
      M: transB ? p.N : p.K,
      N: transB ? p.K : p.N,
      K: p.M,
      batch: 1,
      transA: transB,
      transB: transB,
      accumulate: z > 0,
      alpha: 1,
    });
  }
  if (p.batch === 0) clearBuffer(out.storage.buffer, 0, out.bytes);
  return out;
}

/**
 * op(A)·op(B) for a [..., M, K] (transA: [..., K, M]) and b [..., K, N] (transB: [..., N, K]) with the same
 * batch dims, or b 2-D and shared by every batch; records the graph for backward.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA;
  const transB = !!opts.transB;
  const p = plan(a, b, transA, transB, "matmul");
  const out = matmulRaw(a, b, { transA, transB });
  return record("matmul", [a, b], out, (dy) => {
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      if (!transA) da = matmulRaw(dy, b, { transB: !transB }); // dY·op(B)ᵀ
      else if (!p.sharedB) da = matmulRaw(b, dy, { transA: transB, transB: true }); // op(B)·dYᵀ
      else {
        // op(B)·dY_zᵀ for every batch z, with the one B shared (stride 0)
        da = empty(a.shape);
        gemm({
          a: { t: b, off: 0, stride: 0 },
          b: { t: dy, off: 0, stride: p.M * p.N },
          c: { t: da, off: 0, stride: p.K * p.M },
          M: p.K,
          N: p.M,
          K: p.N,
          batch: p.batch,
          transA: transB,
          transB: true,
          accumulate: false,
          alpha: 1,
        });
      }
    }
    if (b.requiresGrad) {
      if (!p.sharedB) {
        db = transB
          ? matmulRaw(dy, a, { transA: true, transB: transA }) // dYᵀ·op(A)
          : matmulRaw(a, dy, { transA: !transA }); // op(A)ᵀ·dY
      } else if (!transA) {
        // fold the batch: A as [batch·M, K], dY as [batch·M, N]
        db = empty(b.shape);
        const rows = p.batch * p.M;
        gemm({
          a: transB ? { t: dy, off: 0, stride: 0 } : { t: a, off: 0, stride: 0 },
          b: transB ? { t: a, off: 0, stride: 0 } : { t: dy, off: 0, stride: 0 },
          c: { t: db, off: 0, stride: 0 },
          M: transB ? p.N : p.K,
          N: transB ? p.K : p.N,
          K: rows,
          batch: 1,
          transA: true,
          transB: false,
          accumulate: false,
          alpha: 1,
        });
      } else {
        db = sharedGradTransA(a, dy, p, transB);
      }
    }
    return [da, db];
  });
}
