/**
 * Float64 references for the elementwise ops: binary ops with general (NumPy-style, right-aligned) broadcasting and
 * their gradients summed back to each operand's shape, the unary ops and their derivatives, and where.
 * Written independently of the GPU code: no shared helpers, plain loops over multi-indices.
 */

/** A host array with a shape. */
export interface HostArray {
  data: ArrayLike<number>;
  shape: number[];
}

export interface Result {
  data: Float64Array;
  shape: number[];
}

export type BinaryName = "add" | "sub" | "mul" | "div";
export type UnaryName =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "square"
  | "relu"
  | "silu"
  | "gelu"
  | "sigmoid"
  | "logsigmoid"
  | "softplus"
  | "tanh";

const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

function asArray(x: HostArray | number): HostArray {
  return typeof x === "number" ? { data: [x], shape: [] } : x;
}

/** The NumPy broadcast shape of two shapes (throws when they do not broadcast). */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const da = a[a.length - n + k] ?? 1;
    const db = b[b.length - n + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`reference: [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The flat index into an array of `shape` (right-aligned, size-1 axes repeated) for output multi-index `idx`. */
function sourceIndex(shape: readonly number[], idx: readonly number[]): number {
  const off = idx.length - shape.length;
  let flat = 0;
  for (let k = 0; k < shape.length; k++) {
    flat = flat * shape[k] + (shape[k] === 1 ? 0 : idx[off + k]);
  }
  return flat;
}

/** Calls fn(outFlat, multiIndex) for every element of `shape`, in row-major order. */
function forEachIndex(shape: readonly number[], fn: (flat: number, idx: number[]) => void): void {
  const n = prod(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let f = 0; f < n; f++) {
    fn(f, idx);
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
}

function applyBinary(op: BinaryName, x: number, y: number): number {
  switch (op) {
    case "add":
      return x + y;
    case "sub":
      return x - y;
    case "mul":
      return x * y;
    case "div":
      return x / y;
  }
}

/** a ∘ b with NumPy broadcasting; a number is a 0-d array. */
export function binaryRef(op: BinaryName, a: HostArray | number, b: HostArray | number): Result {
  const A = asArray(a);
  const B = asArray(b);
  const shape = broadcastShape(A.shape, B.shape);
  const data = new Float64Array(prod(shape));
  forEachIndex(shape, (f, idx) => {
    data[f] = applyBinary(op, A.data[sourceIndex(A.shape, idx)], B.data[sourceIndex(B.shape, idx)]);
  });
  return { data, shape };
}

/** Gradients [da, db] of Σ dy·(a ∘ b), each summed over the axes its operand was broadcast along. */
export function binaryGradRef(
  op: BinaryName,
  a: HostArray | number,
  b: HostArray | number,
  dy: ArrayLike<number>,
): [Float64Array, Float64Array] {
  const A = asArray(a);
  const B = asArray(b);
  const shape = broadcastShape(A.shape, B.shape);
  const da = new Float64Array(prod(A.shape));
  const db = new Float64Array(prod(B.shape));
  forEachIndex(shape, (f, idx) => {
    const ia = sourceIndex(A.shape, idx);
    const ib = sourceIndex(B.shape, idx);
    const x = A.data[ia];
    const y = B.data[ib];
    const d = dy[f];
    switch (op) {
      case "add":
        da[ia] += d;
        db[ib] += d;
        break;
      case "sub":
        da[ia] += d;
        db[ib] -= d;
        break;
      case "mul":
        da[ia] += d * y;
        db[ib] += d * x;
        break;
      case "div":
        da[ia] += d / y;
        db[ib] -= (d * x) / (y * y);
        break;
    }
  });
  return [da, db];
}

const GELU_K = Math.sqrt(2 / Math.PI);

/** 1 + tanh(u), also accurate for u ≪ 0 (where 1 + Math.tanh(u) loses every digit): 2e^{2u} / (1 + e^{2u}). */
function onePlusTanh(u: number): number {
  if (u >= 0) return 1 + Math.tanh(u);
  const e = Math.exp(2 * u);
  return (2 * e) / (1 + e);
}

function sigmoid64(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** f(x) in float64. */
export function unaryScalar(op: UnaryName, x: number): number {
  switch (op) {
    case "neg":
      return -x;
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "sqrt":
      return Math.sqrt(x);
    case "rsqrt":
      return 1 / Math.sqrt(x);
    case "square":
      return x * x;
    case "relu":
      return x > 0 ? x : 0;
    case "silu":
      return x * sigmoid64(x);
    case "gelu":
      return 0.5 * x * onePlusTanh(GELU_K * (x + 0.044715 * x * x * x));
    case "sigmoid":
      return sigmoid64(x);
    case "logsigmoid":
      return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
    case "softplus":
      return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    case "tanh":
      return Math.tanh(x);
  }
}

/** f'(x) in float64 (relu'(0) = 0). */
export function unaryDerivative(op: UnaryName, x: number): number {
  switch (op) {
    case "neg":
      return -1;
    case "exp":
      return Math.exp(x);
    case "log":
      return 1 / x;
    case "sqrt":
      return 0.5 / Math.sqrt(x);
    case "rsqrt":
      return -0.5 * Math.pow(x, -1.5);
    case "square":
      return 2 * x;
    case "relu":
      return x > 0 ? 1 : 0;
    case "silu": {
      const s = sigmoid64(x);
      return s * (1 + x * (1 - s));
    }
    case "gelu": {
      const u = GELU_K * (x + 0.044715 * x * x * x);
      const sech = 1 / Math.cosh(u); // 1 − tanh²(u), without cancellation
      return 0.5 * onePlusTanh(u) + 0.5 * x * sech * sech * GELU_K * (1 + 3 * 0.044715 * x * x);
    }
    case "sigmoid": {
      const s = sigmoid64(x);
      return s * (1 - s);
    }
    case "logsigmoid":
      return sigmoid64(-x);
    case "softplus":
      return sigmoid64(x);
    case "tanh": {
      const t = Math.tanh(x);
      return 1 - t * t;
    }
  }
}

/** f applied elementwise. */
export function unaryRef(op: UnaryName, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => unaryScalar(op, v));
}

/** dx = dy·f'(x) elementwise. */
export function unaryGradRef(op: UnaryName, x: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => dy[i] * unaryDerivative(op, v));
}

/**
 * where(mask, a, b) with a mask repeated over leading axes (mask element i % mask.length); a and b arrays of the
 * output's length or numbers. Zero means ±0 (NaN is nonzero).
 */
export function whereRef(
  mask: ArrayLike<number>,
  a: ArrayLike<number> | number,
  b: ArrayLike<number> | number,
  n: number,
): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const on = mask[i % mask.length] !== 0; // NaN !== 0 is true, −0 !== 0 is false
    out[i] = on ? (typeof a === "number" ? a : a[i]) : (typeof b === "number" ? b : b[i]);
  }
  return out;
}
