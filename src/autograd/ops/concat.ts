/**
 * concat(tensors, 0): joins tensors along the first axis (all other axes equal) with buffer-to-buffer copies,
 * recorded in order with the dispatches. Backward: each input gets its slice of dy (a copy).
 */
import { copyBuffer } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

/** Copies rows [start, start + shape[0]) of `src` (along its first axis) into a new tensor of `shape`. */
export function copyRows(src: Tensor, start: number, shape: readonly number[]): Tensor {
  const out = empty(shape, src.dtype);
  const rowSize = src.ndim === 0 ? 1 : src.size / Math.max(1, src.shape[0]);
  if (out.size > 0) copyBuffer(src.storage.buffer, start * rowSize * 4, out.storage.buffer, 0, out.bytes);
  return out;
}

/** Joins `tensors` along axis 0 (the only axis supported); the other axes must match. f32 or i32. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (axis !== 0) throw new RangeError(`concat: only axis 0 is supported, got axis ${axis}`);
  if (tensors.length === 0) throw new RangeError("concat: needs at least one tensor");
  const first = tensors[0];
  for (const [i, t] of tensors.entries()) {
    t.assertAlive();
    if (t.ndim === 0) {
      throw new RangeError(`concat: tensor ${i} is 0-d; concatenation needs at least one axis`);
    }
    if (t.dtype !== first.dtype) {
      throw new TypeError(`concat: tensor ${i} is ${t.dtype}, tensor 0 is ${first.dtype}`);
    }
    if (t.ndim !== first.ndim || t.shape.slice(1).some((d, k) => d !== first.shape[k + 1])) {
      throw new RangeError(
        `concat: tensor ${i} has shape [${t.shape}]; every tensor must be [*, ${
          first.shape.slice(1)
        }] like tensor 0`,
      );
    }
  }
  const rows = tensors.map((t) => t.shape[0]);
  const total = rows.reduce((a, b) => a + b, 0);
  const out = empty([total, ...first.shape.slice(1)], first.dtype);
  let offset = 0;
  for (const t of tensors) {
    if (t.size > 0) copyBuffer(t.storage.buffer, 0, out.storage.buffer, offset, t.bytes);
    offset += t.bytes;
  }
  return record("concat", tensors, out, (dy) => {
    let start = 0;
    return tensors.map((t, i) => {
      const g = t.requiresGrad ? copyRows(dy, start, t.shape) : null;
      start += rows[i];
      return g;
    });
  });
}
