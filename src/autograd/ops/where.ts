/**
 * where(mask, a, b): a where the mask is nonzero, b where it is zero; maskedFill(x, mask, value): value where the
 * mask is nonzero, x elsewhere (PyTorch's masked_fill).
 *
 * The mask is an f32 tensor (zero means ±0.0) or an i32 tensor, of the output's shape or of its trailing axes
 * (a causal [T, T] mask against [B, H, T, T] repeats over B and H). a and b are f32 tensors of one shape, or JS
 * numbers (no gradient); with two numbers the output has the mask's shape.
 *
 * Backward: da = dy where the mask is nonzero (0 elsewhere), db = dy where it is zero; the mask gets no gradient.
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("where.wgsl");

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function stripLeadingOnes(s: readonly number[]): number[] {
  let k = 0;
  while (k < s.length && s[k] === 1) k++;
  return s.slice(k);
}

function sameShape(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/** Selects per element without recording a graph. */
function whereRaw(mask: Tensor, a: Tensor | number, b: Tensor | number, shape: readonly number[]): Tensor {
  const out = empty(shape);
  if (out.size === 0) return out;
  const ta = a instanceof Tensor ? a : null;
  const tb = b instanceof Tensor ? b : null;
  const m = mask.binding;
  dispatch({
    kernel: K,
    constants: { MASK_I32: mask.dtype === "i32" ? 1 : 0, A_IMM: ta ? 0 : 1, B_IMM: tb ? 0 : 1 },
    params: { n: out.size, maskSize: mask.size, immA: ta ? 0 : (a as number), immB: tb ? 0 : (b as number) },
    buffers: [m, ta ? ta.binding : m, tb ? tb.binding : m, out.binding],
    workgroups: grid1d(out.size, 256),
  });
  return out;
}

function checkMask(op: string, mask: Tensor, shape: readonly number[]): void {
  if (!(mask instanceof Tensor)) throw new TypeError(`${op}: the mask must be a Tensor (f32 or i32)`);
  mask.assertAlive();
  const m = stripLeadingOnes(mask.shape);
  const tail = shape.slice(shape.length - m.length);
  if (
    m.length > shape.length || !sameShape(m, tail) ||
    (mask.size === 0 && shape.reduce((x, y) => x * y, 1) > 0)
  ) {
    throw new RangeError(
      `${op}: mask shape ${fmt(mask.shape)} does not fit ${
        fmt(shape)
      }; it must be that shape or its trailing ` +
        `axes (repeated over the leading ones)`,
    );
  }
}

function checkValue(op: string, x: Tensor | number, which: string): void {
  if (x instanceof Tensor) {
    x.assertAlive();
    if (x.dtype !== "f32") throw new TypeError(`${op}: ${which} must be an f32 tensor, got ${x.dtype}`);
  } else if (typeof x !== "number") {
    throw new TypeError(`${op}: ${which} must be a Tensor or a number, got ${typeof x}`);
  }
}

/** a where mask ≠ 0, b where mask = 0 (see the module comment for shapes). */
export function where(mask: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  checkValue("where", a, "a");
  checkValue("where", b, "b");
  let shape: readonly number[];
  if (a instanceof Tensor && b instanceof Tensor) {
    if (!sameShape(stripLeadingOnes(a.shape), stripLeadingOnes(b.shape))) {
      throw new RangeError(`where: a ${fmt(a.shape)} and b ${fmt(b.shape)} must have the same shape`);
    }
    shape = a.shape.length >= b.shape.length ? a.shape : b.shape;
  } else if (a instanceof Tensor) shape = a.shape;
  else if (b instanceof Tensor) shape = b.shape;
  else shape = mask.shape;
  checkMask("where", mask, shape);
  const out = whereRaw(mask, a, b, shape);
  const inputs = [a, b].filter((x): x is Tensor => x instanceof Tensor);
  return record("where", inputs, out, (dy) => {
    const grads: (Tensor | null)[] = [];
    if (a instanceof Tensor) grads.push(a.requiresGrad ? whereRaw(mask, dy, 0, a.shape) : null);
    if (b instanceof Tensor) grads.push(b.requiresGrad ? whereRaw(mask, 0, dy, b.shape) : null);
    return grads;
  });
}

/** x with `value` written where mask ≠ 0 (PyTorch's masked_fill). The mask is x's shape or its trailing axes. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError("maskedFill: x must be a Tensor");
  checkValue("maskedFill", x, "x");
  if (typeof value !== "number") {
    throw new TypeError(`maskedFill: value must be a number, got ${typeof value}`);
  }
  checkMask("maskedFill", mask, x.shape);
  const out = whereRaw(mask, value, x, x.shape);
  return record("maskedFill", [x], out, (dy) => [whereRaw(mask, 0, dy, x.shape)]);
}
