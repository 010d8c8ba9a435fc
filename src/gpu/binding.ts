/**
 * Binding planning: how many bytes one storage binding may cover, and ranges of a buffer bound on offsets the
 * device accepts. Every op that splits a tensor too large for one binding plans with these: matmul's batches and
 * row bands, int8Linear's row chunks, the log-prob vocabulary chunks and row blocks, the optimizer's element
 * ranges and bands.ts's row bands.
 *
 * The two device limits involved: maxStorageBufferBindingSize (128 MiB on the portable defaults) and
 * minStorageBufferOffsetAlignment (256 bytes on the defaults; a power of two at most 256), which every binding's
 * byte offset must be a multiple of.
 */
import { gpu } from "./device.ts";
import type { BufferBinding } from "./queue.ts";

/** The bytes one storage binding may cover: the device's maxStorageBufferBindingSize, or `cap` when lower. */
export function bindingLimit(cap: number | null = null): number {
  const dev = gpu().info.limits.maxStorageBufferBindingSize;
  return cap === null ? dev : Math.min(dev, cap);
}

/** The device's minStorageBufferOffsetAlignment: every binding's byte offset is a multiple of it. */
export function offsetAlignment(): number {
  return gpu().info.limits.minStorageBufferOffsetAlignment;
}

/**
 * A binding limit lowered below the device's for one planner (null: the device's own), which tests set to
 * exercise the splitting paths without allocating hundreds of MiB (`setMatmulLimits`, `setInt8BindingLimit`,
 * `setBandBindingLimit`).
 */
export class BindingCap {
  private bytes: number | null = null;
  /** `what` names the setting in errors; `min` is the smallest cap accepted. */
  constructor(readonly what: string, readonly min: number) {}

  /** Throws a RangeError unless `bytes` is null or an integer ≥ min. */
  check(bytes: number | null): void {
    if (bytes !== null && (!Number.isInteger(bytes) || bytes < this.min)) {
      throw new RangeError(`${this.what}: expected an integer ≥ ${this.min} or null, got ${bytes}`);
    }
  }

  set(bytes: number | null): void {
    this.check(bytes);
    this.bytes = bytes;
  }

  /** The limit to plan with now. */
  limit(): number {
    return bindingLimit(this.bytes);
  }
}

/** A binding of the byte range [start, end) of a buffer, its offset aligned down to the device's alignment. */
export interface AlignedRange {
  binding: BufferBinding;
  /** 4-byte elements from the binding's offset to `start`: the kernel's offset parameter. */
  elemOff: number;
  /** Bytes from the binding's offset to `end` (what must fit the binding limit). */
  bytes: number;
}

/** Binds bytes [start, end) of `buffer` from the aligned offset at or below `start` (at least `minSize` bytes). */
export function alignedRange(buffer: GPUBuffer, start: number, end: number, minSize = 16): AlignedRange {
  const align = offsetAlignment();
  const offset = Math.floor(start / align) * align;
  return {
    binding: { buffer, offset, size: Math.max(minSize, end - offset) },
    elemOff: (start - offset) / 4,
    bytes: end - offset,
  };
}

/** Binds `size` bytes of `buffer` from byte `start`, which the caller planned to be aligned (checked). */
export function exactRange(buffer: GPUBuffer, start: number, size: number): BufferBinding {
  if (start % offsetAlignment() !== 0) throw new Error(`internal: binding offset ${start} is not aligned`);
  return { buffer, offset: start, size: Math.max(4, size) };
}

/**
 * Rows of `rowBytes` bytes that fit one binding of `limit` bytes whose offset may lie up to one alignment before
 * the first row (an `alignedRange` of whole rows).
 */
export function rowsPerBinding(rowBytes: number, limit: number): number {
  return Math.floor((limit - offsetAlignment()) / rowBytes);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The fewest rows whose bytes are a multiple of the offset alignment in every operand (rows of `rowBytes[i]`
 * bytes in operand i): bands of a multiple of it start on an aligned offset in each.
 */
export function alignedRowStep(rowBytes: readonly number[]): number {
  const align = offsetAlignment();
  return rowBytes.reduce((s, b) => {
    const need = align / gcd(b, align);
    return (s * need) / gcd(s, need);
  }, 1);
}

/** An element range [start, start + count) of a flat 4-byte buffer. */
export interface ElementRange {
  start: number;
  count: number;
}

/** Options of the planners that take a lowered limit per call (the optimizer and the gradient norm). */
export interface BindingLimitOptions {
  /**
   * Largest binding, in bytes, to use (default: the device's maxStorageBufferBindingSize). Lower values force
   * the multi-dispatch path on small tensors; tests use this.
   */
  maxBindingBytes?: number;
}

/** Bytes per range when a flat buffer is split: a whole number of 16 KiB blocks when the limit allows it. */
export const RANGE_BLOCK_BYTES = 16384;

/**
 * The elements per range of a flat buffer split to fit one binding: the largest multiple of 16 KiB (or of the
 * offset alignment, for a limit under 16 KiB) that fits the binding limit. 16 KiB = 4096 floats is the
 * gradient-norm kernel's block, so splitting a tensor never changes how its squares are grouped and summed.
 */
export function rangeElements(opts: BindingLimitOptions = {}): number {
  const align = offsetAlignment();
  const limit = bindingLimit(opts.maxBindingBytes ?? null);
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

/** The binding of elements [r.start, r.start + r.count) of a (whole-buffer) binding, on a range from `rangeElements`. */
export function elementRange(b: BufferBinding, r: ElementRange): BufferBinding {
  return exactRange(b.buffer, (b.offset ?? 0) + r.start * 4, r.count * 4);
}
