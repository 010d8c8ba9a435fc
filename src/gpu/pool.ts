/**
 * Buffer pool: storage buffers are handed out in size classes and returned to per-class free lists, so a
 * training loop that makes the same tensors every step allocates nothing after its first step.
 *
 * Size classes: 256 bytes minimum, then 2^k, 1.25·2^k, 1.5·2^k and 1.75·2^k (at most 25% slack), so reuse works
 * across tensors whose sizes differ a little (sequence lengths of padded batches).
 *
 * What the pool holds stays near what the work needs, however the batch shapes vary from step to step:
 * - an acquire takes a free buffer of its class, else of one of the next two classes (at most ~1.5× the bytes);
 * - on a miss, free buffers are given back to the driver, those released longest ago first, until as many bytes
 *   as the new buffer's are gone (while the pool holds that many): live + pooled bytes then grow only when live
 *   bytes do. Buffers given back here may still be named by recorded, unsubmitted work, so they are destroyed
 *   after the next submission (`destroyRetired`, called by src/gpu/queue.ts, which drops its bind groups of
 *   them);
 * - `trimIdleBuffers()` (through queue.ts's `trimPool()`, which the trainers call after every optimizer step)
 *   destroys the free buffers that no acquire took since the previous trim.
 *
 * This bound has a host cost (bench/RESULTS.md, session 6): a training step gives back, early in the step, free
 * buffers it needs later (the gradients freed at the previous step's end) and creates them again, and the
 * buffers a tensor gets change from step to step, so the queue's cached bind groups rarely serve a later step.
 *
 * Debug mode, off by default (`setBufferPoisoning(true)`, or `WEBDPO_POISON_BUFFERS=1` in the host's
 * environment, read at the first acquire): every buffer handed out, new or reused, is first filled with a poison
 * pattern (f32 NaN by default), so a kernel that reads elements nothing wrote gives NaN (or the chosen value)
 * instead of whatever an earlier tensor left there. Off, it costs one comparison per acquire.
 */
import { host } from "../io/platform.ts";
import { gpu } from "./device.ts";
import { GpuLimitError } from "./errors.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** The bits of f32 NaN: the default poison pattern. */
export const POISON_NAN = 0x7fc00000;
/** The poison pattern's 32 bits while poisoning is on, null while off; undefined until the environment is read. */
let poisonBits: number | null | undefined = undefined;
/** Writes the pattern into a buffer, ordered after the work recorded so far (src/gpu/queue.ts installs it). */
let poisonWriter: ((buffer: GPUBuffer, bits: number) => void) | null = null;

/**
 * Turns buffer poisoning on or off: while on, every buffer `acquireBuffer` hands out is filled with `bits`
 * repeated (f32 NaN by default; the bits of 1e30 where a NaN would vanish in a max, a small integer where a huge
 * index or segment bound would be clamped or masked) before anything uses it. Overrides `WEBDPO_POISON_BUFFERS`.
 */
export function setBufferPoisoning(on: boolean, bits: number = POISON_NAN): void {
  poisonBits = on ? bits >>> 0 : null;
}

/** The poison pattern's bits while poisoning is on, else null. */
export function bufferPoisoning(): number | null {
  if (poisonBits === undefined) poisonBits = poisonFromEnv();
  return poisonBits;
}

/**
 * `WEBDPO_POISON_BUFFERS`: unset, empty or "0" off; "1" or "nan" f32 NaN; "0x…" those 32 bits (e.g. "0x3": the
 * integer 3 in i32 buffers); any other number that f32 value (e.g. "1e30").
 */
function poisonFromEnv(): number | null {
  const v = host().env("WEBDPO_POISON_BUFFERS")?.trim().toLowerCase();
  if (!v || v === "0") return null;
  if (v === "1" || v === "nan") return POISON_NAN;
  const x = Number(v);
  if (!Number.isFinite(x) || (v.startsWith("0x") && x > 0xffffffff)) {
    throw new RangeError(`WEBDPO_POISON_BUFFERS=${v}: expected 0, 1, nan, 32 bits as 0x… or a number`);
  }
  return v.startsWith("0x") ? x : new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** @internal Installs the function that writes the poison pattern (src/gpu/queue.ts, ordered with dispatches). */
export function setPoisonWriter(writer: (buffer: GPUBuffer, bits: number) => void): void {
  poisonWriter = writer;
}

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
  /**
   * Bytes of every buffer the pool holds from the driver: live, pooled, and given back but not yet destroyed
   * (PyTorch's `memory_reserved`). Below the pool, the driver's allocator keeps the pages of the most this has
   * been, so `peakReservedBytes` is what the process's resident memory follows.
   */
  reservedBytes: number;
  /** The most `reservedBytes` has been since the start or the last `resetPeakMemory()`. */
  peakReservedBytes: number;
  /** Number of buffers held by live tensors. */
  liveBuffers: number;
  /** Number of free buffers kept for reuse. */
  pooledBuffers: number;
}

/** Free buffers by size class: stacks (the most recently released on top). */
const free = new Map<number, GPUBuffer[]>();
/** Every free buffer, in the order of release (oldest first). */
const freeOrder = new Set<GPUBuffer>();
/** The trim period in which each free buffer was released (buffers not taken since an earlier period are idle). */
const releasedIn = new WeakMap<GPUBuffer, number>();
/** Buffers given back on a miss, destroyed after the next submission. */
let retired: GPUBuffer[] = [];
let retiredBytes = 0;
let peakReserved = 0;
let period = 0;
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
    freeOrder.clear();
    retired = [];
    retiredBytes = peakReserved = 0;
    live =
      peak =
      pooled =
      liveCount =
      pooledCount =
        0;
    owner = device;
  }
}

/** Takes a free buffer out of the pool's books (`fromList` when the caller has not popped it already). */
function unpool(buf: GPUBuffer, fromList: boolean): void {
  const size = buf.size;
  if (fromList) {
    const list = free.get(size)!;
    list.splice(list.indexOf(buf), 1);
  }
  if (free.get(size)?.length === 0) free.delete(size);
  freeOrder.delete(buf);
  pooled -= size;
  pooledCount--;
}

/** A free buffer of class `size` or one of the next two classes, or undefined. */
function takeFree(size: number): GPUBuffer | undefined {
  let c = size;
  for (let i = 0; i < 3; i++) {
    const buf = free.get(c)?.pop();
    if (buf) {
      unpool(buf, false);
      return buf;
    }
    c = sizeClass(c + 1);
  }
  return undefined;
}

/** Gives back free buffers, oldest first, until `bytes` bytes are gone (when the pool holds that many). */
function retireFor(bytes: number): void {
  if (pooled < bytes) return;
  let gone = 0;
  for (const buf of freeOrder) {
    if (gone >= bytes) break;
    gone += buf.size;
    unpool(buf, true);
    retired.push(buf);
    retiredBytes += buf.size;
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
  let buf = takeFree(size);
  if (!buf) {
    retireFor(size);
    buf = device.createBuffer({ size, usage: USAGE });
  }
  live += buf.size;
  liveCount++;
  if (live > peak) peak = live;
  peakReserved = Math.max(peakReserved, reservedBytes());
  if (poisonBits !== null) {
    const bits = bufferPoisoning();
    if (bits !== null && poisonWriter) poisonWriter(buf, bits);
  }
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
  freeOrder.add(buf);
  releasedIn.set(buf, period);
  pooled += size;
  pooledCount++;
}

/** Bytes of buffers given back on misses and not yet destroyed (they wait for the next submission). */
export function retiredBytesPending(): number {
  return retiredBytes;
}

/**
 * Destroys the buffers given back on misses: call after submitting the work recorded so far. Returns them (the
 * caller drops what still refers to them).
 */
export function destroyRetired(): GPUBuffer[] {
  if (retired.length === 0) return [];
  const gone = retired;
  for (const b of gone) b.destroy();
  retired = [];
  retiredBytes = 0;
  return gone;
}

/** Bytes of every buffer held from the driver: live, pooled, and given back but not yet destroyed. */
function reservedBytes(): number {
  return live + pooled + retiredBytes;
}

/** Current memory accounting. */
export function memoryStats(): MemoryStats {
  return {
    liveBytes: live,
    peakBytes: peak,
    pooledBytes: pooled,
    reservedBytes: reservedBytes(),
    peakReservedBytes: peakReserved,
    liveBuffers: liveCount,
    pooledBuffers: pooledCount,
  };
}

/** Starts new peak measurements from the current live and reserved bytes. */
export function resetPeakMemory(): void {
  peak = live;
  peakReserved = reservedBytes();
}

/**
 * Destroys the free buffers that have stayed free since the previous `trimPool()` (none was acquired in between),
 * and starts a new period. Returns the destroyed buffers (the caller drops what still refers to them).
 * Work already recorded must be submitted first (which also destroys the retired buffers): src/gpu/queue.ts's
 * `trimPool` does that.
 */
export function trimIdleBuffers(): GPUBuffer[] {
  const gone: GPUBuffer[] = [];
  // freeOrder is in release order, so the idle buffers (released in earlier periods) come first
  for (const buf of freeOrder) {
    if ((releasedIn.get(buf) ?? 0) >= period) break;
    unpool(buf, true);
    buf.destroy();
    gone.push(buf);
  }
  period++;
  return gone;
}

/** Destroys every pooled (free) buffer, giving the memory back to the driver. */
export function emptyCache(): void {
  destroyRetired();
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  freeOrder.clear();
  pooled = 0;
  pooledCount = 0;
}
