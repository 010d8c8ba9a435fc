/**
 * add, sub, mul, div of two operands with broadcasting of one of them. Allowed operand pairs:
 * - equal shapes (leading 1s ignored: [N] and [1, N] are equal; the output takes the longer shape);
 * - a row: an operand [N] or [1, N] against [..., N] (one value per column of the last axis);
 * - a column: an operand [..., R, 1] or [R, 1] against [..., R, N] (one value per row of the last axis);
 * - a scalar: a one-element tensor, or a JS number (which gets no gradient), against any shape.
 * Either operand may be the broadcast one; the output has the other operand's shape.
 *
 * Backward: add da = dy, db = dy; sub da = dy, db = −dy; mul da = dy·b, db = dy·a; div da = dy / b,
 * db = −dy·a / b². A broadcast operand's gradient is summed back to its shape (over the rows for a row, over the
 * last axis — and the leading axes it was shared across — for a column, over everything for a scalar) by the
 * deterministic chunked sums in kernels/binary.wgsl, fused with the gradient formula (no full-size temporary).
 */
import { kernel } from "../../gpu/kernel.ts";
import type { ParamValues } from "../../gpu/params.ts";
import { type BufferBinding, dispatch, grid1d } from "../../gpu/queue.ts";
import { zeros } from "../../tensor/create.ts";
import { empty, Tensor, view } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("binary.wgsl");

/** How an operand is read for element i of the full tensor (matches the MODE_* overrides in binary.wgsl). */
export const Mode = { Full: 0, Row: 1, Column: 2, Scalar: 3, Immediate: 4 } as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

export type BinaryOp = "add" | "sub" | "mul" | "div";
const OPS: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

/** Gradient formulas (the GRAD override): 0 dy, 1 −dy, 2 dy·b, 3 dy·a, 4 dy / b, 5 −dy·a / b². */
const Grad = { Dy: 0, NegDy: 1, DyB: 2, DyA: 3, DyOverB: 4, DivB: 5 } as const;
type Grad = (typeof Grad)[keyof typeof Grad];
const GRAD_A: Record<BinaryOp, Grad> = { add: Grad.Dy, sub: Grad.Dy, mul: Grad.DyB, div: Grad.DyOverB };
const GRAD_B: Record<BinaryOp, Grad> = { add: Grad.Dy, sub: Grad.NegDy, mul: Grad.DyA, div: Grad.DivB };

/** The ops whose gradient formulas read neither operand. */
const SAVES_NOTHING = new Set<BinaryOp>(["add", "sub"]);

/** Partial sums per invocation in the gradient reductions. */
const CHUNK = 128;

/** The output shape and the index mode of each operand. */
export interface BroadcastPlan {
  shape: number[];
  modeA: Mode;
  modeB: Mode;
  /** The output's last axis (1 for a 0-d output). */
  N: number;
}

const sizeOf = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function stripLeadingOnes(s: readonly number[]): number[] {
  let k = 0;
  while (k < s.length && s[k] === 1) k++;
  return s.slice(k);
}

function sameShape(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/** How `x` is broadcast against the larger shape `full`, or null when it cannot be. */
function broadcastMode(x: readonly number[], full: readonly number[]): Mode | null {
  if (sizeOf(x) === 1) return Mode.Scalar;
  const N = full.length > 0 ? full[full.length - 1] : 1;
  const sx = stripLeadingOnes(x);
  if (sx.length === 1 && sx[0] === N) return Mode.Row;
  if (
    x.length >= 2 && full.length >= 2 && x[x.length - 1] === 1 && x[x.length - 2] === full[full.length - 2]
  ) {
    const lead = stripLeadingOnes(x.slice(0, -2));
    if (lead.length === 0 || sameShape(lead, stripLeadingOnes(full.slice(0, -2)))) return Mode.Column;
  }
  return null;
}

/** Works out how `a ∘ b` broadcasts, or throws an error naming both shapes and what is allowed. */
export function broadcastPlan(
  op: string,
  a: readonly number[] | null,
  b: readonly number[] | null,
): BroadcastPlan {
  const last = (s: readonly number[]) => (s.length > 0 ? s[s.length - 1] : 1);
  if (a === null && b === null) {
    throw new TypeError(`${op}: at least one operand must be a tensor, got two numbers`);
  }
  if (a === null) return { shape: [...b!], modeA: Mode.Immediate, modeB: Mode.Full, N: last(b!) };
  if (b === null) return { shape: [...a], modeA: Mode.Full, modeB: Mode.Immediate, N: last(a) };
  if (sameShape(stripLeadingOnes(a), stripLeadingOnes(b))) {
    const shape = a.length >= b.length ? [...a] : [...b];
    return { shape, modeA: Mode.Full, modeB: Mode.Full, N: last(shape) };
  }
  const mb = broadcastMode(b, a);
  if (mb !== null) return { shape: [...a], modeA: Mode.Full, modeB: mb, N: last(a) };
  const ma = broadcastMode(a, b);
  if (ma !== null) return { shape: [...b], modeA: ma, modeB: Mode.Full, N: last(b) };
  throw new RangeError(
    `${op}: shapes ${fmt(a)} and ${
      fmt(b)
    } do not broadcast. Allowed: equal shapes; a row [N] or [1, N] against ` +
      `[..., N]; a column [..., R, 1] or [R, 1] against [..., R, N]; a one-element tensor or a number against ` +
      `any shape (either operand may be the broadcast one).`,
  );
}

function checkOperand(op: string, x: Tensor | number, which: string): void {
  if (x instanceof Tensor) {
    x.assertAlive();
    if (x.dtype !== "f32") {
      throw new TypeError(`${op}: operand ${which} must be an f32 tensor, got ${x.dtype}`);
    }
  } else if (typeof x !== "number") {
    throw new TypeError(`${op}: operand ${which} must be a Tensor or a number, got ${typeof x}`);
  }
}

interface Bound {
  plan: BroadcastPlan;
  /** Bindings 1 and 2 (an immediate operand is bound to the other operand's buffer). */
  bufA: BufferBinding;
  bufB: BufferBinding;
  sizeA: number;
  sizeB: number;
  imm: number;
}

function bind(a: Tensor | number, b: Tensor | number, plan: BroadcastPlan): Bound {
  const ta = a instanceof Tensor ? a : null;
  const tb = b instanceof Tensor ? b : null;
  return {
    plan,
    bufA: (ta ?? tb!).binding,
    bufB: (tb ?? ta!).binding,
    sizeA: ta ? ta.size : 1,
    sizeB: tb ? tb.size : 1,
    imm: typeof a === "number" ? a : typeof b === "number" ? b : 0,
  };
}

function params(bd: Bound, n: number, M = 0, K = 0): ParamValues {
  return { n, N: bd.plan.N, sizeA: bd.sizeA, sizeB: bd.sizeB, imm: bd.imm, M, K, chunk: CHUNK };
}

function constants(bd: Bound, grad: number, op = 0): Record<string, number> {
  return { OP: op, MODE_A: bd.plan.modeA, MODE_B: bd.plan.modeB, GRAD: grad };
}

function forwardRaw(op: BinaryOp, bd: Bound): Tensor {
  const out = empty(bd.plan.shape);
  if (out.size > 0) {
    dispatch({
      kernel: K,
      constants: constants(bd, 0, OPS[op]),
      params: params(bd, out.size),
      buffers: [bd.bufA, bd.bufB, out.binding],
      workgroups: grid1d(out.size, 256),
    });
  }
  return out;
}

/** The gradient (formula `grad`) of a full-shaped operand: one elementwise pass. */
function fullGrad(bd: Bound, grad: Grad, dy: Tensor): Tensor {
  const out = empty(dy.shape);
  if (out.size > 0) {
    dispatch({
      kernel: K,
      entry: "grad",
      constants: constants(bd, grad),
      params: params(bd, out.size),
      buffers: [bd.bufA, bd.bufB, out.binding, dy.binding],
      workgroups: grid1d(out.size, 256),
    });
  }
  return out;
}

/**
 * Σ of G viewed as [M, K], over the rows ("rows": → [K]) or along each row ("cols": → [M]), in chunked passes.
 * `src` null: the first pass reads G = the gradient formula of dy, a, b; otherwise it reads `src` (consumed).
 */
function chunkedSum(
  axis: "rows" | "cols",
  bd: Bound,
  grad: Grad,
  dy: Tensor,
  src: Tensor | null,
  M: number,
  Kc: number,
): Tensor {
  let cur = src;
  let first = src === null;
  for (;;) {
    const outM = axis === "rows" ? Math.ceil(M / CHUNK) : M;
    const outK = axis === "rows" ? Kc : Math.ceil(Kc / CHUNK);
    if (!first && (axis === "rows" ? M === 1 : Kc === 1)) return cur!;
    const out = empty([outM, outK]);
    const bufs = first
      ? [bd.bufA, bd.bufB, out.binding, dy.binding]
      : [cur!.binding, cur!.binding, out.binding, cur!.binding];
    dispatch({
      kernel: K,
      entry: axis === "rows" ? "reduce_rows" : "reduce_cols",
      constants: constants(bd, first ? grad : Grad.Dy),
      params: params(bd, dy.size, M, Kc),
      buffers: bufs,
      workgroups: grid1d(outM * outK, 256),
    });
    cur?.dispose();
    cur = out;
    first = false;
    M = outM;
    Kc = outK;
  }
}

/** The gradient (formula `grad`) of an operand read in `mode`, summed back to `shape`. */
function operandGrad(bd: Bound, mode: Mode, grad: Grad, dy: Tensor, shape: readonly number[]): Tensor {
  if (mode === Mode.Full) {
    return grad === Grad.Dy ? dy : fullGrad(bd, grad, dy);
  }
  if (dy.size === 0) return zeros(shape);
  const n = dy.size;
  const N = bd.plan.N;
  let r: Tensor;
  if (mode === Mode.Scalar) r = chunkedSum("rows", bd, grad, dy, null, n, 1);
  else if (mode === Mode.Row) r = chunkedSum("rows", bd, grad, dy, null, n / N, N);
  else {
    const rows = n / N;
    const R = sizeOf(shape);
    r = chunkedSum("cols", bd, grad, dy, null, rows, N);
    // a column shared across leading axes ([R, 1] against [B, R, N]): also sum the B row sums of each r
    if (R < rows) r = chunkedSum("rows", bd, Grad.Dy, dy, r, rows / R, R);
  }
  const v = view(r, shape);
  r.dispose();
  return v;
}

function binary(op: BinaryOp, a: Tensor | number, b: Tensor | number): Tensor {
  checkOperand(op, a, "a");
  checkOperand(op, b, "b");
  const plan = broadcastPlan(
    op,
    a instanceof Tensor ? a.shape : null,
    b instanceof Tensor ? b.shape : null,
  );
  const bd = bind(a, b, plan);
  const out = forwardRaw(op, bd);
  const inputs = [a, b].filter((x): x is Tensor => x instanceof Tensor);
  return record(op, inputs, out, (dy) => {
    // Rebind at backward time: the saved operands must still be alive (binding checks it). add and sub save
    // nothing: their gradients are ±dy, so dy stands in for the operands (which a forward may have freed).
    const bb = SAVES_NOTHING.has(op) ? { ...bd, bufA: dy.binding, bufB: dy.binding } : bind(a, b, plan);
    const grads: (Tensor | null)[] = [];
    if (a instanceof Tensor) {
      grads.push(a.requiresGrad ? operandGrad(bb, plan.modeA, GRAD_A[op], dy, a.shape) : null);
    }
    if (b instanceof Tensor) {
      grads.push(b.requiresGrad ? operandGrad(bb, plan.modeB, GRAD_B[op], dy, b.shape) : null);
    }
    return grads;
  });
}

/** a + b, with broadcasting of a row, a column or a scalar (see the module comment). */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("add", a, b);
}

/** a − b, with broadcasting of a row, a column or a scalar (see the module comment). */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("sub", a, b);
}

/** a · b elementwise, with broadcasting of a row, a column or a scalar (see the module comment). */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("mul", a, b);
}

/** a / b elementwise, with broadcasting of a row, a column or a scalar (see the module comment). */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return binary("div", a, b);
}
