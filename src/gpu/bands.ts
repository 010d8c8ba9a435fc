/**
 * Row bands for ops over tensors larger than one storage binding (maxStorageBufferBindingSize, 128 MiB on the
 * portable defaults): logits of a long input ([2048, 49152] f32 is 384 MiB) through softmax, logSoftmax, scale or
 * an elementwise function. An op whose rows are independent (each output row depends on the same row of each
 * input) calls `forRowBands` with its tensors and how many elements a row holds in each; it gets one call per
 * band of rows, with each tensor bound to just that band's bytes, and dispatches as if the band were the whole
 * tensor. A band starts on the device's minStorageBufferOffsetAlignment; a tensor that fits one binding is one
 * band (the op's usual single dispatch).
 */
import { alignedRowStep, BindingCap, exactRange } from "./binding.ts";
import { GpuLimitError } from "./errors.ts";
import type { BufferBinding } from "./queue.ts";

/** A tensor as bands see it: its buffer (from offset 0) and its elements per row. */
export interface BandOperand {
  binding: BufferBinding;
  perRow: number;
}

const cap = new BindingCap("setBandBindingLimit", 256);

/** Lowers the binding size bands are planned with below the device's (null: the device's own); for tests. */
export function setBandBindingLimit(bytes: number | null): void {
  cap.set(bytes);
}

/**
 * Calls `fn(rowsInBand, bindings)` for consecutive bands of `rows` rows, each operand bound to the band's rows
 * only; `what` names the op in the error for a row too large for one binding.
 */
export function forRowBands(
  what: string,
  rows: number,
  operands: BandOperand[],
  fn: (rowsInBand: number, bindings: BufferBinding[]) => void,
): void {
  const limit = cap.limit();
  const widest = Math.max(...operands.map((o) => o.perRow * 4));
  if (rows * widest <= limit) {
    fn(rows, operands.map((o) => o.binding));
    return;
  }
  // every band's byte offset, in every operand, a multiple of the alignment
  const step = alignedRowStep(operands.map((o) => o.perRow * 4));
  const band = Math.floor(limit / widest / step) * step;
  if (band < 1) {
    throw new GpuLimitError(
      `${what}: a row of ${widest} bytes (or ${step} rows, the least a band may start on) is more than one ` +
        `storage binding holds (${limit} bytes)`,
    );
  }
  for (let r0 = 0; r0 < rows; r0 += band) {
    const n = Math.min(band, rows - r0);
    fn(
      n,
      operands.map((o) =>
        exactRange(o.binding.buffer, (o.binding.offset ?? 0) + r0 * o.perRow * 4, n * o.perRow * 4)
      ),
    );
  }
}
