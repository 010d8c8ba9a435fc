/**
 * Element ranges of a flat f32 buffer that each fit one storage-buffer binding. A parameter larger than the
 * device's maxStorageBufferBindingSize (a 49152×576 embedding is 113 MB, a 151936×896 one 545 MB) is processed
 * by several dispatches, each bound to one range; every range starts at a byte offset that is a multiple of
 * minStorageBufferOffsetAlignment.
 */
import { gpu } from "../gpu/device.ts";
import type { BufferBinding } from "../gpu/queue.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** An element range [start, start + count) of a flat tensor. */
export interface ElementRange {
  start: number;
  count: number;
}

/** Options shared by the optimizer and the gradient norm. */
export interface BindingLimitOptions {
  /**
   * Largest binding, in bytes, to use (default: the device's maxStorageBufferBindingSize). Lower values force
   * the multi-dispatch path on small tensors; tests use this.
   */
  maxBindingBytes?: number;
}

/** Bytes per range when a tensor is split: a whole number of 16 KiB blocks when the limit allows it. */
export const RANGE_BLOCK_BYTES = 16384;

/**
 * The elements per range for this device: the largest multiple of 16 KiB (or of the offset alignment, for
 * a limit under 16 KiB) that fits the binding limit. 16 KiB = 4096 floats is the gradient-norm kernel's block,
 * so splitting a tensor never changes how its squares are grouped and summed.
 */
export function rangeElements(opts: BindingLimitOptions = {}): number {
  const { limits } = gpu().info;
  const align = limits.minStorageBufferOffsetAlignment;
  const device = limits.maxStorageBufferBindingSize;
  const limit = opts.maxBindingBytes === undefined ? device : Math.min(device, opts.maxBindingBytes);
  if (!(limit >= align)) {
    throw new RangeError(
      `maxBindingBytes ${opts.maxBindingBytes} is below the device's minStorageBufferOffsetAlignment (${align} bytes)`,
    );
  }
  const unit = limit >= RANGE_BLOCK_BYTES ? Math.max(RANGE_BLOCK_BYTES, align) : align;
  return (Math.floor(limit / unit) * unit) / 4;
}

/** Splits `n` elements into ranges of at most `per` elements. */
export function splitRanges(n: number, per: number): ElementRange[] {
  const out: ElementRange[] = [];
  for (let start = 0; start < n; start += per) out.push({ start, count: Math.min(per, n - start) });
  return out;
}

/** The binding of elements [r.start, r.start + r.count) of a tensor's buffer. */
export function rangeBinding(t: Tensor, r: ElementRange): BufferBinding {
  t.assertAlive();
  return { buffer: t.storage.buffer, offset: r.start * 4, size: r.count * 4 };
}
