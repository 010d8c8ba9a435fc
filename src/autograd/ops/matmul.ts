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
 * How the products become dispatches (kernels, vec4 padding, binding and workgroup limits, K windows on
 * loop-limited adapters): gemm.ts.
 */
import { clearBuffer, type DispatchSpec } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import { collectDispatches, gemm } from "./gemm.ts";

export {
  defaultMatmulVariant,
  GEMV_MAX_ROWS,
  isRegisterVariant,
  type MatmulLimits,
  type MatmulVariant,
  matmulVariant,
  REGISTER_K_WINDOW,
  setGemvMaxRows,
  setMatmulLimits,
  setMatmulVariant,
  SHARED_K_WINDOW,
  SUBGROUP_K_WINDOW,
  subgroupMatmulSupported,
} from "./gemm.ts";

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
  return collectDispatches(() => matmulInto(out, a, b, opts));
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
