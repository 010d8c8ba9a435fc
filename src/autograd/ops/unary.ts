/**
 * Elementwise unary ops, each with its backward: neg, exp, log, sqrt, rsqrt, square, relu, silu, gelu (tanh form,
 * Hugging Face's gelu_new / gelu_pytorch_tanh), sigmoid, logsigmoid, softplus, tanh. One kernel
 * (kernels/unary.wgsl) with an override selecting the op; the backward entry computes dx from dy and whichever of
 * the input x or the output y the op saved: the output for exp, sqrt, rsqrt (f' is exact from it), the input
 * elsewhere (for sigmoid and tanh because σ(x)σ(−x) and sech²(x) stay accurate in the tails, where y(1 − y) and
 * 1 − y² cancel).
 *
 *   neg −x            → −dy                      exp e^x            → dy·y
 *   log ln x          → dy / x                   sqrt √x            → dy / (2y)
 *   rsqrt 1/√x        → −dy·y³ / 2               square x²          → 2x·dy
 *   relu max(x, 0)    → dy·[x > 0]               silu x·σ(x)        → dy·σ(x)(1 + x(1 − σ(x)))
 *   gelu 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))  → its derivative in x
 *   sigmoid σ(x)      → dy·σ(x)σ(−x)             logsigmoid ln σ(x) → dy·σ(−x)
 *   softplus ln(1+eˣ) → dy·σ(x)                  tanh               → dy·sech²(x)
 */
import { kernel } from "../../gpu/kernel.ts";
import { forRowBands } from "../../gpu/bands.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("unary.wgsl");

/** Each op's OP override in unary.wgsl and what its backward needs: the input, the output, or neither. */
const UNARY = {
  neg: { op: 0, saves: "none" },
  exp: { op: 1, saves: "y" },
  log: { op: 2, saves: "x" },
  sqrt: { op: 3, saves: "y" },
  rsqrt: { op: 4, saves: "y" },
  square: { op: 5, saves: "x" },
  relu: { op: 6, saves: "x" },
  silu: { op: 7, saves: "x" },
  gelu: { op: 8, saves: "x" },
  sigmoid: { op: 9, saves: "x" },
  logsigmoid: { op: 10, saves: "x" },
  softplus: { op: 11, saves: "x" },
  tanh: { op: 12, saves: "x" },
} as const;

export type UnaryOp = keyof typeof UNARY;

/** The names of every unary op. */
export const UNARY_OPS = Object.keys(UNARY) as UnaryOp[];

function run(entry: "main" | "grad", op: UnaryOp, x: Tensor, dy?: Tensor): Tensor {
  const out = empty(x.shape);
  if (out.size > 0) {
    // elementwise: in bands of elements where the tensors exceed one storage binding
    const operands = (dy ? [x, out, dy] : [x, out]).map((t) => ({ binding: t.binding, perRow: 1 }));
    forRowBands(op, x.size, operands, (n, buffers) => {
      dispatch({
        kernel: K,
        entry,
        constants: { OP: UNARY[op].op },
        params: { n },
        buffers,
        workgroups: grid1d(n, 256),
      });
    });
  }
  return out;
}

/** Applies the unary op `op` to `x` (f32), recording its backward. */
export function unary(op: UnaryOp, x: Tensor): Tensor {
  const spec = UNARY[op];
  if (!spec) throw new TypeError(`unary: unknown op "${op}"; expected one of ${UNARY_OPS.join(", ")}`);
  if (!(x instanceof Tensor)) throw new TypeError(`${op}: expected a Tensor, got ${typeof x}`);
  x.assertAlive();
  if (x.dtype !== "f32") throw new TypeError(`${op}: expected an f32 tensor, got ${x.dtype}`);
  const y = run("main", op, x);
  return record(op, [x], y, (dy) => {
    const saved = spec.saves === "y" ? y : spec.saves === "x" ? x : dy;
    if (saved.size !== dy.size) {
      throw new RangeError(`${op} backward: gradient [${dy.shape}] for output [${y.shape}]`);
    }
    return [run("grad", op, saved, dy)];
  });
}

/** −x. */
export const neg = (x: Tensor): Tensor => unary("neg", x);
/** eˣ (overflows to +Infinity past x ≈ 88.7, as f32 does). */
export const exp = (x: Tensor): Tensor => unary("exp", x);
/** Natural log (log 0 = −Infinity, log of a negative number = NaN). */
export const log = (x: Tensor): Tensor => unary("log", x);
/** √x. */
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
/** 1/√x. */
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
/** x². */
export const square = (x: Tensor): Tensor => unary("square", x);
/** max(x, 0); its gradient at 0 is 0. */
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** x·σ(x) (SiLU / swish). */
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) (HF gelu_new / gelu_pytorch_tanh). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** σ(x) = 1 / (1 + e⁻ˣ), without overflow. */
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** log σ(x) = min(x, 0) − log1p(e^−|x|). */
export const logsigmoid = (x: Tensor): Tensor => unary("logsigmoid", x);
/** log(1 + eˣ) = max(x, 0) + log1p(e^−|x|). */
export const softplus = (x: Tensor): Tensor => unary("softplus", x);
/** tanh x, saturating to ±1 without NaN for large |x|. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
