/** reshape(x, shape): a view with another shape (no copy). One dimension may be -1. Backward: reshape back. */
import { type Tensor, view } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

export function resolveShape(size: number, shape: readonly number[]): number[] {
  const s = [...shape];
  const k = s.indexOf(-1);
  if (k >= 0) {
    const rest = s.reduce((a, b, i) => (i === k ? a : a * b), 1);
    if (rest === 0 || size % rest !== 0) {
      throw new RangeError(`cannot reshape ${size} elements to [${shape}]`);
    }
    s[k] = size / rest;
  }
  return s;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape(x.size, shape);
  return record("reshape", [x], view(x, s), (dy) => [view(dy, x.shape)]);
}
