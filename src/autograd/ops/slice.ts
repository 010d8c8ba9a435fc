/**
 * slice(x, start, end): rows [start, end) along the first axis, as a contiguous copy (a buffer-to-buffer copy).
 * Negative bounds count from the end, as in Python; bounds outside [-rows, rows] or start > end throw.
 * Backward: dy placed into zeros of x's shape (the rows outside the slice are cleared, the slice copied).
 */
import { clearBuffer, copyBuffer } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import { copyRows } from "./concat.ts";

/** Rows [start, end) of x along axis 0 (end defaults to the number of rows). */
export function slice(x: Tensor, start: number, end?: number): Tensor {
  x.assertAlive();
  if (x.ndim === 0) throw new RangeError("slice: cannot slice a 0-d tensor");
  const n = x.shape[0];
  const norm = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < -n || v > n) {
      throw new RangeError(`slice: ${what} ${v} is outside [-${n}, ${n}] for shape [${x.shape}]`);
    }
    return v < 0 ? v + n : v;
  };
  const s = norm(start, "start");
  const e = norm(end ?? n, "end");
  if (s > e) throw new RangeError(`slice: start ${start} is after end ${end} for shape [${x.shape}]`);
  const shape = [e - s, ...x.shape.slice(1)];
  const out = copyRows(x, s, shape);
  return record("slice", [x], out, (dy) => {
    const dx = empty(x.shape);
    const rowBytes = n === 0 ? 0 : x.bytes / n;
    if (s > 0) clearBuffer(dx.storage.buffer, 0, s * rowBytes);
    if (dy.size > 0) copyBuffer(dy.storage.buffer, 0, dx.storage.buffer, s * rowBytes, dy.bytes);
    if (e < n) clearBuffer(dx.storage.buffer, e * rowBytes, (n - e) * rowBytes);
    return [dx];
  });
}
