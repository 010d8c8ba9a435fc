/** Tensor creation: from data, constants, seeded random values and ranges. */
import { kernel } from "../gpu/kernel.ts";
import { clearBuffer, dispatch, grid1d, upload } from "../gpu/queue.ts";
import { defaultGenerator, type Generator } from "./random.ts";
import { type DType, empty, type Tensor } from "./tensor.ts";

const FILL = kernel("fill.wgsl");

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/** Nested number arrays, or a typed array (then `shape` is required unless 1-D). */
export type TensorData = number | number[] | number[][] | number[][][] | number[][][][] | ArrayLike<number>;

function inferShape(data: TensorData): number[] {
  const shape: number[] = [];
  let d: unknown = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0];
  }
  return shape;
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) {
    if (t.dtype !== "f32") throw new TypeError("only f32 tensors can require gradients");
    t.requiresGrad = true;
  }
  return t;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`invalid shape [${shape}]: sizes must be integers ≥ 0`);
    }
  }
}

/** A tensor holding `data` (nested arrays, or a flat typed array with `shape`). */
export function tensor(data: TensorData, shape?: readonly number[], opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (data instanceof Int32Array ? "i32" : "f32");
  let flat: ArrayLike<number>;
  let s: readonly number[];
  if (typeof data === "number") {
    flat = [data];
    s = shape ?? [];
  } else if (Array.isArray(data) && (data.length === 0 || Array.isArray(data[0]))) {
    s = inferShape(data);
    flat = (data as unknown[]).flat(Infinity) as number[];
    if (flat.length !== s.reduce((a, b) => a * b, 1)) throw new RangeError("ragged nested array");
    if (shape && shape.reduce((a, b) => a * b, 1) === flat.length) s = shape;
  } else {
    flat = data as ArrayLike<number>;
    s = shape ?? [flat.length];
  }
  checkShape(s);
  const size = s.reduce((a, b) => a * b, 1);
  if (size !== flat.length) {
    throw new RangeError(`data has ${flat.length} values but shape [${s}] holds ${size}`);
  }
  const t = empty(s, dtype);
  if (size > 0) {
    const arr = dtype === "i32" ? Int32Array.from(flat) : Float32Array.from(flat);
    upload(t.storage.buffer, arr);
  }
  return finish(t, opts);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  checkShape(shape);
  const t = empty(shape, opts.dtype ?? "f32");
  clearBuffer(t.storage.buffer, 0, Math.max(4, t.bytes));
  return finish(t, opts);
}

/** A tensor filled with `value` (f32). */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  checkShape(shape);
  if ((opts.dtype ?? "f32") !== "f32") {
    return tensor(new Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, opts);
  }
  const t = empty(shape);
  if (t.size > 0) {
    dispatch({
      kernel: FILL,
      params: { n: t.size, value },
      buffers: [t.binding],
      workgroups: grid1d(t.size, 256),
    });
  }
  return finish(t, opts);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

/** Standard normal samples times `std` plus `mean`, from a seeded generator. */
export function randn(
  shape: readonly number[],
  opts: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  checkShape(shape);
  const g = opts.generator ?? defaultGenerator;
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  for (let i = 0; i < n; i++) a[i] = mean + std * g.normal();
  return tensor(a, shape, { requiresGrad: opts.requiresGrad });
}

/** Uniform samples in [low, high) (default [0, 1)), from a seeded generator. */
export function rand(
  shape: readonly number[],
  opts: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  checkShape(shape);
  const g = opts.generator ?? defaultGenerator;
  const n = shape.reduce((a, b) => a * b, 1);
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * g.uniform();
  return tensor(a, shape, { requiresGrad: opts.requiresGrad });
}

/** `[start, start+step, …)` below `end` (1-D). `arange(n)` is 0..n-1. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((end - start) / step));
  const a = new Array<number>(n);
  for (let i = 0; i < n; i++) a[i] = start + i * step;
  return tensor(a, [n], opts);
}
