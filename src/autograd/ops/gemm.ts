/**
 * The dispatch planning of matmul (matmul.ts is the op and its backward): one (batched) product
 * C = alpha·op(A)·op(B) (+ C) over operands given as a tensor's storage, an offset and a batch stride (`Gemm`),
 * turned into dispatches (`gemm`), or collected for a benchmark to replay (`collectDispatches`).
 *
 * Kernels: kernels/matmul_register.wgsl (each invocation a 16×16 register block; for CPU adapters such as
 * lavapipe/llvmpipe, where an invocation is one SIMD lane), kernels/matmul_subgroup.wgsl (the same work with
 * A's loads shared across a subgroup of 8 lanes by subgroupBroadcast: CPU adapters with the "subgroups"
 * feature, where loads set the speed; identical bits; on llvmpipe its operands are read from textures,
 * texture_operands.ts) and kernels/matmul_shared.wgsl (64×64 blocks through
 * workgroup memory; for GPUs). kernels/matmul_tiled.wgsl (128×128 blocks, 8×8 per invocation, vec4
 * loads, padded workgroup memory, no bounds checks inside the edges) is meant to be the faster GPU kernel but is
 * not yet measured on a GPU, so "auto" never picks it. `setMatmulVariant` picks one; "auto" (the default) picks
 * by adapter.
 * With the register kernel, a product of few rows by a transposed B (x·Wᵀ while decoding: one new token per
 * sequence) goes to kernels/matmul_gemv.wgsl instead (8 columns of one row per invocation, so no block rows are
 * wasted), for M ≤ `GEMV_MAX_ROWS`.
 * The register and tiled kernels read operands as vec4 rows: an operand whose contiguous axis is not a multiple
 * of 4 is first copied into zero-padded rows (kernels/matmul_pad.wgsl), O(size) work against the O(M·N·K)
 * product.
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
import { cpuKernels, gpu, hasSubgroupsOf8, isCpuAdapter } from "../../gpu/device.ts";
import { GpuLimitError } from "../../gpu/errors.ts";
import { kernel } from "../../gpu/kernel.ts";
import { LOOP_BUDGET, loopLimited } from "../../gpu/loop_budget.ts";
import { clearBuffer, dispatch, type DispatchSpec, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { OperandCopies, textureKernel, textureOperandsOn } from "./texture_operands.ts";

const REGISTER = kernel("matmul_register.wgsl");
const SUBGROUP = kernel("matmul_subgroup.wgsl");
const GEMV = kernel("matmul_gemv.wgsl");
const SHARED = kernel("matmul_shared.wgsl");
const TILED = kernel("matmul_tiled.wgsl");
const PAD = kernel("matmul_pad.wgsl");

/**
 * The matmul kernels: register-tiled (CPU adapters), register-tiled with subgroup-shared loads (CPU adapters
 * with subgroups of at least 8 lanes), shared-memory-tiled (GPUs), and the large-tile GPU kernel (unmeasured on
 * a GPU: chosen only by `setMatmulVariant("tiled")`).
 */
export type MatmulVariant = "register" | "subgroup" | "shared" | "tiled";

const VARIANTS: readonly MatmulVariant[] = ["register", "subgroup", "shared", "tiled"];

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
 * Chooses the matmul kernel for every later matmul: "register", "subgroup", "shared", "tiled", or "auto" (the
 * default: on CPU adapters — a fallback adapter, or one named llvmpipe, lavapipe or SwiftShader — "subgroup"
 * where the device has subgroups of at least 8 lanes, else "register"; "shared" elsewhere). "subgroup" on a
 * device without them makes the next matmul throw.
 */
export function setMatmulVariant(v: MatmulVariant | "auto"): void {
  if (v !== "auto" && !VARIANTS.includes(v)) {
    throw new RangeError(
      `setMatmulVariant: expected "register", "subgroup", "shared", "tiled" or "auto", got ${
        JSON.stringify(v)
      }`,
    );
  }
  setting = v;
}

/**
 * Whether a device can run kernels/matmul_subgroup.wgsl: the "subgroups" feature with subgroups of at least 8
 * lanes (its 8-invocation workgroups must be one subgroup).
 */
export const subgroupMatmulSupported = hasSubgroupsOf8;

/** The kernel "auto" picks for an adapter (subgroup information absent: none). */
export function defaultMatmulVariant(
  info: { adapterName: string; isFallbackAdapter: boolean } & Parameters<typeof hasSubgroupsOf8>[0],
): MatmulVariant {
  if (!isCpuAdapter(info)) return "shared";
  return hasSubgroupsOf8(info) ? "subgroup" : "register";
}

/**
 * The kernel matmul uses now: a `setMatmulVariant` choice, else the CPU kernels' choice (`cpuKernels()`: the
 * adapter's kind, or what `setCpuKernels` forces, as for every kernel with a CPU and a GPU variant), the CPU
 * choice being "subgroup" where the device supports it.
 */
export function matmulVariant(): MatmulVariant {
  if (setting !== "auto") return setting;
  if (!cpuKernels()) return "shared";
  return subgroupMatmulSupported(gpu().info) ? "subgroup" : "register";
}

/** Whether a variant is one of the CPU-adapter kernels (register blocks, with or without subgroup loads). */
export function isRegisterVariant(v: MatmulVariant): boolean {
  return v === "register" || v === "subgroup";
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

/** A matrix operand: a tensor's storage from element `off`, batch i at off + i·stride (stride 0: shared). */
export interface Operand {
  t: Tensor;
  off: number;
  stride: number;
}

/** One (batched) product C = alpha·op(A)·op(B) (+ C) over operands. */
export interface Gemm {
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

/** Where gemm's dispatches go: the queue, or a list (`collectDispatches`). */
let sink: DispatchSpec[] | null = null;

/** The dispatches `fn`'s gemm calls would record, collected instead of recorded (benchmarks replay them). */
export function collectDispatches(fn: () => void): DispatchSpec[] {
  const list: DispatchSpec[] = [];
  sink = list;
  try {
    fn();
  } finally {
    sink = null;
  }
  return list;
}

function issue(spec: DispatchSpec): void {
  if (sink) sink.push(spec);
  else dispatch(spec);
}

/** Runs one (batched) product on the GPU: C = alpha·op(A)·op(B) (+ C). */
export function gemm(g: Gemm): void {
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
  const v = matmulVariant();
  if (v === "subgroup" && !subgroupMatmulSupported(gpu().info)) {
    const { info } = gpu();
    throw new GpuLimitError(
      `matmul: the "subgroup" kernel needs the device feature "subgroups" with subgroups of at least 8 lanes; ` +
        `${info.adapterName} has ${
          info.features.subgroups ? `subgroups of ${info.subgroupMinSize}–${info.subgroupMaxSize}` : "none"
        }. Use setMatmulVariant("register") or "auto".`,
    );
  }
  if (isRegisterVariant(v)) gemmRegister(g, v === "subgroup");
  else if (v === "tiled") gemmTiled(g);
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
 * K per window of the subgroup kernel: ceil(K/4) + 1 steps, then at most 32·9 in the stores (the edge loop of
 * each of its 32 rows). A multiple of 16.
 */
export const SUBGROUP_K_WINDOW = Math.floor((4 * (LOOP_BUDGET - 290)) / 16) * 16;

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

/** The operands of a tiled product, in the order a, b, out, with what one matrix of each covers. */
type TileOperands = { op: Operand; elems: number; name: string; shape: number[] }[];

/** One dispatch of a tiled product: its bindings of a, b and out, its block of C, its window of K. */
interface Tile {
  a: ReturnType<typeof bindRange>;
  b: ReturnType<typeof bindRange>;
  c: ReturnType<typeof bindRange>;
  m0: number;
  n0: number;
  k0: number;
  kw: number;
  workgroups: [number, number, number];
}

/**
 * The dispatches of a product whose workgroups cover BM × BN of C each: as many batches as every binding allows
 * (a GpuLimitError naming the operand when not even one fits), then blocks of rows and columns within the
 * workgroups-per-dimension limit, then each window [k0, k0 + kw) of K (columns k0.. of A, or rows with transA;
 * rows k0.. of B, or columns with transB).
 */
function forEachTile(
  ops: TileOperands,
  M: number,
  N: number,
  batch: number,
  { BM, BN }: { BM: number; BN: number },
  windows: [number, number][],
  emit: (t: Tile) => void,
): void {
  const maxWg = workgroupLimit();
  for (let z0 = 0; z0 < batch;) {
    const nz = batchesThatFit(ops, z0, batch - z0);
    if (nz === 0) {
      const bad = ops.find((o) => bindRange(o.op, z0, 1, o.elems).bytes > bindingCap.limit())!;
      throw tooLarge(bad.name, bad.shape, bad.elems);
    }
    const [a, b, c] = ops.map((o) => bindRange(o.op, z0, nz, o.elems));
    for (let m0 = 0; m0 < M; m0 += BM * maxWg) {
      for (let n0 = 0; n0 < N; n0 += BN * maxWg) {
        const workgroups: [number, number, number] = [
          Math.ceil(Math.min(N - n0, BN * maxWg) / BN),
          Math.ceil(Math.min(M - m0, BM * maxWg) / BM),
          nz,
        ];
        for (const [k0, kw] of windows) emit({ a, b, c, m0, n0, k0, kw, workgroups });
      }
    }
    z0 += nz;
  }
}

/** An operand ready for the vec4 kernels, read with row length `ld` (a multiple of 4). */
type Vec4Operand = { op: Operand; ld: number };

/**
 * An operand as vec4 rows: itself when its contiguous axis (`cols`) is a multiple of 4 and every matrix starts on
 * a vec4 boundary, else a zero-padded copy (added to `temps`); `ld` is the row length to read it with.
 */
function vec4Operand(
  op: Operand,
  rows: number,
  cols: number,
  batch: number,
  temps: Tensor[],
): Vec4Operand {
  const ld = ceil4(cols);
  if (cols % 4 === 0 && op.off % 4 === 0 && op.stride % 4 === 0) return { op, ld };
  const count = op.stride === 0 ? 1 : batch;
  if (op.stride !== 0 && op.stride !== rows * cols) {
    throw new Error("matmul: internal error, strided batch");
  }
  const t = padRows(op.t, op.off, count * rows, cols, ld);
  temps.push(t);
  return { op: { t, off: 0, stride: op.stride === 0 ? 0 : rows * ld }, ld };
}

/** A product's operands as the vec4 kernels read them (`vec4Operand`) and the ranges `forEachTile` binds. */
function vec4Operands(g: Gemm, temps: Tensor[]): { A: Vec4Operand; B: Vec4Operand; ops: TileOperands } {
  const { M, N, K, batch, transA, transB } = g;
  const aRows = transA ? K : M;
  const aCols = transA ? M : K;
  const bRows = transB ? N : K;
  const bCols = transB ? K : N;
  const A = vec4Operand(g.a, aRows, aCols, batch, temps);
  const B = vec4Operand(g.b, bRows, bCols, batch, temps);
  const ops = [
    { op: A.op, elems: aRows * A.ld, name: "a", shape: [aRows, aCols] },
    { op: B.op, elems: bRows * B.ld, name: "b", shape: [bRows, bCols] },
    { op: g.c, elems: M * N, name: "out", shape: [M, N] },
  ];
  return { A, B, ops };
}

function gemmRegister(g: Gemm, subgroup: boolean): void {
  const { M, N, K, batch, transA, transB } = g;
  const temps: Tensor[] = [];
  const { A, B, ops } = vec4Operands(g, temps);
  const constants = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 };
  // few rows times Bᵀ: the row kernel (its loop runs K/4 + 1 times: within lavapipe's loop budget)
  const rowKernel = transB && !transA && M <= gemvMaxRows && A.ld / 4 + 1 <= LOOP_BUDGET;
  const windows: [number, number][] = rowKernel
    ? [[0, K]]
    : kWindows(K, subgroup ? SUBGROUP_K_WINDOW : REGISTER_K_WINDOW);
  const block = rowKernel ? { BM: 1, BN: 64 } : subgroup ? { BM: 32, BN: 64 } : { BM: 16, BN: 128 };
  // llvmpipe: the subgroup kernel reads both operands from textures (texture_operands.ts)
  const copies = subgroup && !rowKernel && !sink && textureOperandsOn() ? new OperandCopies() : null;
  forEachTile(ops, M, N, batch, block, windows, (t) => {
    const ta = copies?.bind(0, t.a.binding) ?? null;
    const tb = ta && copies?.bind(1, t.b.binding);
    const textured = ta && tb ? [ta, tb] : null;
    issue({
      kernel: rowKernel ? GEMV : subgroup ? (textured ? textureKernel(SUBGROUP) : SUBGROUP) : REGISTER,
      constants: rowKernel ? {} : constants,
      params: {
        M,
        N,
        K: t.kw,
        lda4: A.ld / 4,
        ldb4: B.ld / 4,
        strideA4: A.op.stride / 4,
        strideB4: B.op.stride / 4,
        strideC: g.c.stride,
        offA4: t.a.elemOff / 4 + (transA ? (t.k0 * A.ld) / 4 : t.k0 / 4),
        offB4: t.b.elemOff / 4 + (transB ? t.k0 / 4 : (t.k0 * B.ld) / 4),
        offC: t.c.elemOff,
        mOff: t.m0,
        nOff: t.n0,
        accumulate: g.accumulate || t.k0 > 0,
        alpha: g.alpha,
      },
      buffers: [...(textured ?? [t.a.binding, t.b.binding]), t.c.binding],
      workgroups: t.workgroups,
    });
  });
  for (const t of temps) t.dispose();
}

/**
 * The Params of the block kernels (kernels/common/matmul_params.wgsl: matmul_shared, matmul_tiled) for one tile:
 * operands read with row lengths lda/ldb and batch strides strideA/strideB, in floats.
 */
function blockParams(g: Gemm, t: Tile, lda: number, ldb: number, strideA: number, strideB: number) {
  return {
    M: g.M,
    N: g.N,
    K: t.kw,
    lda,
    ldb,
    strideA,
    strideB,
    strideC: g.c.stride,
    offA: t.a.elemOff + (g.transA ? t.k0 * lda : t.k0),
    offB: t.b.elemOff + (g.transB ? t.k0 : t.k0 * ldb),
    offC: t.c.elemOff,
    mOff: t.m0,
    nOff: t.n0,
    accumulate: g.accumulate || t.k0 > 0,
    alpha: g.alpha,
  };
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
  const { TM, TN } = SHARED_TILE;
  const constants = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, TM, TN };
  forEachTile(ops, M, N, batch, { BM: 16 * TM, BN: 16 * TN }, kWindows(K, SHARED_K_WINDOW), (t) =>
    issue({
      kernel: SHARED,
      constants,
      params: blockParams(g, t, transA ? M : K, transB ? K : N, g.a.stride, g.b.stride),
      buffers: [t.a.binding, t.b.binding, t.c.binding],
      workgroups: t.workgroups,
    }));
}

/**
 * K per window of the tiled kernel on loop-limited adapters (the tests force it on lavapipe): 86 loop steps per 8
 * of K and 117 in the stores (kernels/matmul_tiled.wgsl's header). A multiple of 16.
 */
export const TILED_K_WINDOW = Math.floor(((LOOP_BUDGET - 117) / 86) * 8 / 16) * 16;

/** The tiled kernel's micro-tile per invocation: 8×8, blocks of 128×128. */
const TILED_TILE = { TM: 8, TN: 8 };

function gemmTiled(g: Gemm): void {
  const { M, N, K, batch, transA, transB } = g;
  const temps: Tensor[] = [];
  const { A, B, ops } = vec4Operands(g, temps);
  const { TM, TN } = TILED_TILE;
  const constants = { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, TM, TN };
  forEachTile(ops, M, N, batch, { BM: 16 * TM, BN: 16 * TN }, kWindows(K, TILED_K_WINDOW), (t) =>
    issue({
      kernel: TILED,
      constants,
      params: blockParams(g, t, A.ld, B.ld, A.op.stride, B.op.stride),
      buffers: [t.a.binding, t.b.binding, t.c.binding],
      workgroups: t.workgroups,
    }));
  for (const t of temps) t.dispose();
}
