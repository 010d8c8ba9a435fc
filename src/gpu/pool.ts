/**
 * Buffer pool: storage buffers are handed out in size classes and returned to per-class free lists, so a
 * training loop that makes the same tensors every step allocates nothing after its first step.
 *
 * Size classes: 256 bytes minimum, then 2^k, 1.25·2^k, 1.5·2^k and 1.75·2^k (at most 25% slack), so reuse works
 * across tensors whose sizes differ a little (sequence lengths of padded batches).
 */
import { gpu } from "./device.ts";
import { GpuLimitError } from "./errors.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Rounds a byte size up to its pool class. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  for (const f of [1, 1.25, 1.5, 1.75, 2]) {
    const c = Math.ceil((p * f) / 256) * 256;
    if (c >= bytes) return c;
  }
  return 2 * p;
}

/** Memory accounting of the pool, in bytes of GPU buffers. */
export interface MemoryStats {
  /** Bytes of buffers held by live tensors (by size class). */
  liveBytes: number;
  /** The most `liveBytes` has been since the start or the last `resetPeakMemory()`. */
  peakBytes: number;
  /** Bytes of free buffers kept for reuse. */
  pooledBytes: number;
  /** Number of buffers held by live tensors. */
  liveBuffers: number;
  /** Number of free buffers kept for reuse. */
  pooledBuffers: number;
}

const free = new Map<number, GPUBuffer[]>();
let live = 0;
let peak = 0;
let pooled = 0;
let liveCount = 0;
let pooledCount = 0;
let owner: GPUDevice | null = null;

function checkDevice(device: GPUDevice): void {
  if (owner !== device) {
    // A new device (after a loss or re-init): buffers of the old one are useless.
    free.clear();
    live =
      peak =
      pooled =
      liveCount =
      pooledCount =
        0;
    owner = device;
  }
}

/** Takes a buffer of at least `bytes` bytes from the pool (or allocates one). */
export function acquireBuffer(bytes: number): GPUBuffer {
  const { device, info } = gpu();
  checkDevice(device);
  const size = sizeClass(Math.max(4, bytes));
  if (size > info.limits.maxBufferSize) {
    throw new GpuLimitError(
      `a buffer of ${bytes} bytes exceeds this device's maxBufferSize of ${info.limits.maxBufferSize} bytes ` +
        `(adapter: ${info.adapterName}); use smaller batches or sequence lengths.`,
    );
  }
  const list = free.get(size);
  let buf = list?.pop();
  if (buf) {
    pooled -= size;
    pooledCount--;
  } else {
    buf = device.createBuffer({ size, usage: USAGE });
  }
  live += size;
  liveCount++;
  if (live > peak) peak = live;
  return buf;
}

/** Returns a buffer to its class's free list. */
export function releaseBuffer(buf: GPUBuffer): void {
  const size = buf.size;
  if (owner === null) return;
  live -= size;
  liveCount--;
  let list = free.get(size);
  if (!list) free.set(size, list = []);
  list.push(buf);
  pooled += size;
  pooledCount++;
}

/** Current memory accounting. */
export function memoryStats(): MemoryStats {
  return {
    liveBytes: live,
    peakBytes: peak,
    pooledBytes: pooled,
    liveBuffers: liveCount,
    pooledBuffers: pooledCount,
  };
}

/** Starts a new peak measurement from the current live bytes. */
export function resetPeakMemory(): void {
  peak = live;
}

/** Destroys every pooled (free) buffer, giving the memory back to the driver. */
export function emptyCache(): void {
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  pooled = 0;
  pooledCount = 0;
}
