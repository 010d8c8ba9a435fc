/**
 * Dispatch, batched submission, uploads and readback.
 *
 * Dispatches are recorded into one command encoder (one compute pass) and submitted when a result is read back,
 * when a batch fills (`BATCH` dispatches), or on `flush()`. A training step therefore never waits on the GPU
 * except where the CPU needs a value. Every dispatch's parameters go into one uniform arena per batch, written
 * just before the batch is submitted. Validation errors of a batch are collected in an error scope and thrown
 * (naming the kernel) at the next readback or `sync()`.
 */
import { deviceLossReason, deviceLostReason, gpu } from "./device.ts";
import { DeviceLostError, GpuLimitError, KernelError } from "./errors.ts";
import type { BindingKind, Kernel } from "./kernel.ts";
import { encodeParams, type ParamValues } from "./params.ts";
import {
  destroyRetired,
  emptyCache as emptyPool,
  retiredBytesPending,
  setPoisonWriter,
  trimIdleBuffers,
} from "./pool.ts";

/** A sampled texture binding (read with `textureLoad`): an rgba32float `texture_2d<f32>` of the kernel. */
export interface TextureBinding {
  texture: GPUTexture;
}

/** A storage buffer binding: the whole buffer, or a byte range of it. */
export interface BufferBinding {
  buffer: GPUBuffer;
  offset?: number;
  size?: number;
}

export interface DispatchSpec {
  kernel: Kernel;
  /** The entry point; "main" by default. */
  entry?: string;
  /** WGSL `override` constants. */
  constants?: Record<string, number>;
  /**
   * Scalars for binding 0 by the names of the kernel's WGSL `struct Params` fields (`{ M, N, K, alpha }`), checked
   * against it: see params.ts.
   */
  params?: ParamValues;
  /**
   * Bindings 1, 2, … in order: storage buffers, or for a binding the kernel declares as `texture_2d<f32>`, a
   * texture (`{ texture }`, bound whole).
   */
  buffers: (GPUBuffer | BufferBinding | TextureBinding)[];
  /** Workgroup counts. */
  workgroups: readonly [number, number?, number?];
}

/**
 * What a profiler plugs into the queue (src/gpu/profile.ts installs one while a profile runs): while installed,
 * each dispatch gets its own compute pass with the descriptor `timedPass` returns for its kernel, and `resolve`
 * is called with a batch's encoder before it is finished (it returns what to run after the submission).
 */
export interface PassTimer {
  timedPass(device: GPUDevice, name: string): GPUComputePassDescriptor | undefined;
  resolve(device: GPUDevice, encoder: GPUCommandEncoder): (() => void) | null;
}
let passTimer: PassTimer | null = null;

/** Installs (or, with null, removes) the pass timer. */
export function setPassTimer(timer: PassTimer | null): void {
  passTimer = timer;
}

const SLOT = 256;
const BATCH = 1024;
/**
 * Submit early once the pool has given back this many bytes on misses: they are destroyed only after the work
 * recorded so far is submitted, and until then the driver cannot reuse their memory, so they add to the peak.
 */
const RETIRED_FLUSH_BYTES = 64 * 2 ** 20;
let arena: GPUBuffer | null = null;
let arenaDevice: GPUDevice | null = null;
const arenaCpu = new Uint8Array(SLOT * BATCH);
const arenaView = new DataView(arenaCpu.buffer);
const NO_PARAMS: ParamValues = Object.freeze({});
let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let slots = 0;
let batchKernels = new Set<string>();
let used = new Set<GPUBuffer>();
const errorChecks: Promise<void>[] = [];
let deferredError: Error | null = null;
let dispatchCount = 0;

const pipelines = new Map<string, GPUComputePipeline>();
const layouts = new Map<string, GPUBindGroupLayout>();
let cacheDevice: GPUDevice | null = null;

/**
 * Bind groups are cached by pipeline and bound buffer ranges, since creating one costs several times the rest of a
 * dispatch's recording (lavapipe: bench/RESULTS.md, session 6). The hits are few in a training step today: the
 * pool's buffers for a step's tensors change from step to step (see pool.ts). The
 * uniform arena is bound with a dynamic offset, so a bind group does not depend on the dispatch's parameter slot.
 * Each cached group is listed under the buffers it binds, so the groups of a buffer the pool destroys go with it
 * (`dropBindGroups`); past BIND_GROUP_CACHE groups the least recently used is evicted.
 */
interface CachedGroup {
  group: GPUBindGroup;
  buffers: GPUBuffer[];
}
const bindGroups = new Map<string, CachedGroup>();
/** The keys of the cached groups that bind each buffer. */
let groupsOf = new WeakMap<GPUBuffer, Set<string>>();
const BIND_GROUP_CACHE = 8192;
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
const textureIds = new WeakMap<GPUTexture, number>();
const textureViews = new WeakMap<GPUTexture, GPUTextureView>();

function textureId(t: GPUTexture): number {
  let id = textureIds.get(t);
  if (id === undefined) textureIds.set(t, id = nextBufferId++);
  return id;
}

function textureView(t: GPUTexture): GPUTextureView {
  let v = textureViews.get(t);
  if (!v) textureViews.set(t, v = t.createView());
  return v;
}

/** A number naming a buffer for as long as it lives (bind-group cache keys; ops' own caches). */
export function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, id = nextBufferId++);
  return id;
}

function clearBindGroups(): void {
  bindGroups.clear();
  groupsOf = new WeakMap();
}

/** Removes one cached group and its entries under its buffers. */
function forgetGroup(key: string): void {
  const g = bindGroups.get(key);
  if (!g) return;
  bindGroups.delete(key);
  for (const b of g.buffers) groupsOf.get(b)?.delete(key);
}

/** Drops the cached bind groups that bind any of `buffers` (destroyed, or about to be). */
function dropBindGroups(buffers: Iterable<GPUBuffer>): void {
  for (const b of buffers) {
    const keys = groupsOf.get(b);
    if (!keys) continue;
    for (const key of [...keys]) forgetGroup(key);
    groupsOf.delete(b);
  }
}

/** The cached bind group for `key` (now the most recently used), or one made by `make` and cached. */
function cachedBindGroup(key: string, buffers: GPUBuffer[], make: () => GPUBindGroup): GPUBindGroup {
  const hit = bindGroups.get(key);
  if (hit) {
    // most recently used last: a Map iterates in insertion order
    bindGroups.delete(key);
    bindGroups.set(key, hit);
    return hit.group;
  }
  if (bindGroups.size >= BIND_GROUP_CACHE) forgetGroup(bindGroups.keys().next().value!);
  const group = make();
  bindGroupsMade++;
  bindGroups.set(key, { group, buffers });
  for (const b of buffers) {
    let keys = groupsOf.get(b);
    if (!keys) groupsOf.set(b, keys = new Set());
    keys.add(key);
  }
  return group;
}

let bindGroupsMade = 0;

/** Bind groups in the cache now, and made since the process started (for tests and benchmarks). */
export function bindGroupStats(): { cached: number; created: number } {
  return { cached: bindGroups.size, created: bindGroupsMade };
}
const pipelineIds = new WeakMap<GPUComputePipeline, number>();
let nextPipelineId = 1;

function caches(device: GPUDevice): void {
  if (cacheDevice !== device) {
    pipelines.clear();
    layouts.clear();
    clearBindGroups();
    cacheDevice = device;
    encoder = null;
    pass = null;
    slots = 0;
    used = new Set();
    batchKernels = new Set();
  }
}

function bindGroupLayout(device: GPUDevice, kinds: BindingKind[]): GPUBindGroupLayout {
  const key = kinds.join(",");
  let l = layouts.get(key);
  if (!l) {
    l = device.createBindGroupLayout({
      entries: kinds.map((type, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        ...(type === "texture"
          ? { texture: { sampleType: "unfilterable-float" as const } }
          : { buffer: binding === 0 ? { type, hasDynamicOffset: true } : { type } }),
      })),
    });
    layouts.set(key, l);
  }
  return l;
}

function pipeline(device: GPUDevice, spec: DispatchSpec, kinds: BindingKind[]): GPUComputePipeline {
  const entry = spec.entry ?? "main";
  const consts = spec.constants ?? {};
  const ckeys = Object.keys(consts).sort();
  const key = `${spec.kernel.name}|${entry}|${ckeys.map((k) => `${k}=${consts[k]}`).join(",")}|${
    kinds.join(",")
  }`;
  let p = pipelines.get(key);
  if (!p) {
    const layout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout(device, kinds)] });
    const constants: Record<string, number> = {};
    for (const k of ckeys) constants[k] = consts[k];
    p = device.createComputePipeline({
      label: `${spec.kernel.name}:${entry}`,
      layout,
      compute: { module: spec.kernel.shaderModule(), entryPoint: entry, constants },
    });
    pipelines.set(key, p);
  }
  return p;
}

function begin(device: GPUDevice, timed?: string): GPUComputePassEncoder {
  if (!encoder) {
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    encoder = device.createCommandEncoder();
  }
  if (timed !== undefined && passTimer) {
    // profiling: each dispatch in its own pass, timestamped at both ends
    endPass();
    pass = encoder.beginComputePass(passTimer.timedPass(device, timed));
  }
  if (!pass) pass = encoder.beginComputePass();
  return pass;
}

function endPass(): void {
  if (pass) {
    pass.end();
    pass = null;
  }
}

/** Records one compute dispatch. */
export function dispatch(spec: DispatchSpec): void {
  const { device, info } = gpu();
  caches(device);
  if (!arena || arenaDevice !== device) {
    arena = device.createBuffer({
      size: SLOT * BATCH,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    arenaDevice = device;
  }
  const entry = spec.entry ?? "main";
  const name = `${spec.kernel.name}:${entry}`;
  // checked and written first: a dispatch with wrong parameters records nothing
  encodeParams(spec.kernel.paramLayout(entry), spec.params ?? NO_PARAMS, arenaView, slots * SLOT);
  const wg = spec.workgroups;
  const maxWg = info.limits.maxComputeWorkgroupsPerDimension;
  for (const w of wg) {
    if (w !== undefined && (w > maxWg || w < 0 || !Number.isInteger(w))) {
      throw new GpuLimitError(
        `kernel ${name}: workgroup count ${w} is outside [0, ${maxWg}] (${info.adapterName})`,
      );
    }
  }
  if (spec.buffers.length > info.limits.maxStorageBuffersPerShaderStage) {
    throw new GpuLimitError(
      `kernel ${name}: ${spec.buffers.length} storage buffers exceed the device's limit`,
    );
  }
  const declared = spec.kernel.bindings;
  const kinds: BindingKind[] = ["uniform"];
  const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: arena, offset: 0, size: SLOT } }];
  let key = "";
  const bufs: GPUBuffer[] = [];
  spec.buffers.forEach((b, i) => {
    const binding = i + 1;
    const kind = declared.get(binding);
    if ("texture" in b) {
      if (kind !== "texture") {
        throw new KernelError(name, `binding ${binding} is not declared as a texture in the WGSL source`);
      }
      kinds.push(kind);
      entries.push({ binding, resource: textureView(b.texture) });
      key += `|t${textureId(b.texture)}`;
      return;
    }
    if (kind === undefined || kind === "uniform" || kind === "texture") {
      throw new KernelError(
        name,
        `binding ${binding} is not declared as a storage buffer in the WGSL source`,
      );
    }
    kinds.push(kind);
    const buffer = b instanceof GPUBuffer ? b : b.buffer;
    const offset = b instanceof GPUBuffer ? 0 : b.offset ?? 0;
    const size = b instanceof GPUBuffer ? buffer.size - offset : b.size ?? buffer.size - offset;
    if (size > info.limits.maxStorageBufferBindingSize) {
      throw new GpuLimitError(
        `kernel ${name}: binding ${binding} is ${size} bytes, more than this device's maxStorageBufferBindingSize ` +
          `(${info.limits.maxStorageBufferBindingSize} bytes, ${info.adapterName}); split the tensor.`,
      );
    }
    const bound = Math.max(4, Math.ceil(size / 4) * 4);
    entries.push({ binding, resource: { buffer, offset, size: bound } });
    key += `|${bufferId(buffer)}:${offset}:${bound}`;
    bufs.push(buffer);
    used.add(buffer);
  });
  const p = begin(device, passTimer ? name : undefined);
  const pl = pipeline(device, spec, kinds);
  let pid = pipelineIds.get(pl);
  if (pid === undefined) pipelineIds.set(pl, pid = nextPipelineId++);
  key = pid + key;
  const bg = cachedBindGroup(
    key,
    bufs,
    () => device.createBindGroup({ label: name, layout: pl.getBindGroupLayout(0), entries }),
  );
  const pslot = slots;
  slots++;
  batchKernels.add(name);
  p.setPipeline(pl);
  p.setBindGroup(0, bg, [pslot * SLOT]);
  p.dispatchWorkgroups(wg[0], wg[1] ?? 1, wg[2] ?? 1);
  dispatchCount++;
  if (slots >= BATCH || retiredBytesPending() > RETIRED_FLUSH_BYTES) flush();
}

/**
 * Bytes written by `upload` since the last submission. WebGPU's writeBuffer copies the data into a staging buffer
 * at once but writes the destination only at the next `queue.submit`, and the staging memory is freed only after
 * that submission completes: until then the data is held twice. `flush` submits when uploads wait, and
 * `settleUploads` bounds what waits during long upload sequences (a model's weights).
 */
let uploadedBytes = 0;

/** Submits every recorded dispatch and pending upload (does not wait for the GPU). */
export function flush(): void {
  if (!encoder) {
    if (uploadedBytes > 0) {
      // nothing recorded, but uploads wait for a submission to reach their buffers (and free their staging)
      gpu().device.queue.submit([]);
      uploadedBytes = 0;
    }
    dropBindGroups(destroyRetired()); // nothing recorded can name them
    return;
  }
  uploadedBytes = 0;
  const { device } = gpu();
  endPass();
  if (slots > 0) device.queue.writeBuffer(arena!, 0, arenaCpu, 0, slots * SLOT);
  const readTimestamps = passTimer?.resolve(device, encoder) ?? null;
  const cb = encoder.finish();
  device.queue.submit([cb]);
  // buffers the pool gave back while this batch was recorded may be named by it: destroyed once it is submitted
  dropBindGroups(destroyRetired());
  readTimestamps?.();
  const kernels = [...batchKernels];
  const validation = device.popErrorScope();
  const oom = device.popErrorScope();
  errorChecks.push(
    Promise.all([validation, oom]).then(([v, o]) => {
      const e = v ?? o;
      if (e && !deferredError) {
        const m = /'([^']+:[^']+)'/.exec(e.message);
        deferredError = o && !v
          ? new GpuLimitError(`the GPU ran out of memory while running ${kernels.join(", ")}: ${e.message}`)
          : new KernelError(m ? m[1] : `one of [${kernels.join(", ")}]`, e.message);
      }
    }, () => {}),
  );
  encoder = null;
  pass = null;
  slots = 0;
  used = new Set();
  batchKernels = new Set();
}

/** Throws any error recorded by earlier batches. */
async function checkErrors(): Promise<void> {
  if (errorChecks.length) await Promise.all(errorChecks.splice(0));
  if (deferredError) {
    const e = deferredError;
    deferredError = null;
    throw e;
  }
}

/** Writes bytes into a buffer, ordered after every dispatch recorded so far. */
export function upload(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
  const { device } = gpu();
  caches(device);
  if (used.has(buffer)) flush();
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const aligned = Math.floor(bytes.byteLength / 4) * 4;
  uploadedBytes += bytes.byteLength;
  if (aligned > 0) device.queue.writeBuffer(buffer, byteOffset, bytes, 0, aligned);
  if (aligned < bytes.byteLength) {
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(aligned));
    device.queue.writeBuffer(buffer, byteOffset + aligned, tail);
  }
}

/** The poison pattern repeated (pool.ts's debug mode), written in chunks of at most this many bytes. */
const POISON_CHUNK = 4 * 2 ** 20;
let poisonFill = new Uint32Array(0);

/**
 * Fills a whole buffer with `bits` repeated, ordered after every dispatch recorded so far (an acquired buffer may
 * still be read by recorded work as the tensor it held before): the pool calls it on each acquire while
 * poisoning is on.
 */
function poisonBuffer(buffer: GPUBuffer, bits: number): void {
  const words = Math.min(buffer.size, POISON_CHUNK) / 4;
  if (poisonFill.length < words || poisonFill[0] !== bits) poisonFill = new Uint32Array(words).fill(bits);
  for (let off = 0; off < buffer.size; off += POISON_CHUNK) {
    const n = Math.min(POISON_CHUNK, buffer.size - off) / 4;
    upload(buffer, n === poisonFill.length ? poisonFill : poisonFill.subarray(0, n), off);
  }
}
setPoisonWriter(poisonBuffer);

/** Copies `size` bytes between buffers, recorded in order with the dispatches. */
export function copyBuffer(
  src: GPUBuffer,
  srcOffset: number,
  dst: GPUBuffer,
  dstOffset: number,
  size: number,
): void {
  const { device } = gpu();
  caches(device);
  begin(device);
  endPass();
  encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, Math.ceil(size / 4) * 4);
  used.add(src);
  used.add(dst);
}

/**
 * Copies `bytes` bytes of `src` from `srcOffset` (both multiples of 16) into an rgba32float texture `width` texels
 * wide, texel i at (i mod width, ⌊i / width⌋), recorded in order with the dispatches: the full rows in one copy,
 * the last partial row in another.
 */
export function copyToTexture(src: GPUBuffer, srcOffset: number, bytes: number, dst: GPUTexture): void {
  const { device } = gpu();
  caches(device);
  begin(device);
  endPass();
  const width = dst.width;
  const texels = bytes / 16;
  if (!Number.isInteger(texels) || srcOffset % 16 !== 0 || Math.ceil(texels / width) > dst.height) {
    throw new Error(
      `internal: copyToTexture of ${bytes} bytes at ${srcOffset} into ${width}×${dst.height} texels`,
    );
  }
  const rows = Math.floor(texels / width);
  const rowBytes = width * 16;
  if (rows > 0) {
    encoder!.copyBufferToTexture(
      { buffer: src, offset: srcOffset, bytesPerRow: rowBytes },
      { texture: dst },
      [
        width,
        rows,
      ],
    );
  }
  const tail = texels - rows * width;
  if (tail > 0) {
    encoder!.copyBufferToTexture(
      { buffer: src, offset: srcOffset + rows * rowBytes, bytesPerRow: rowBytes },
      { texture: dst, origin: [0, rows] },
      [tail, 1],
    );
  }
  used.add(src);
}

/** How long a failed readback waits for `device.lost` to settle before it takes the failure for something else. */
const LOSS_WAIT_MS = 1000;

/** The error of a readback of `what` on a device lost for `reason`. */
function lostWhileReading(reason: string, what: string, cause: unknown): DeviceLostError {
  return Object.assign(
    new DeviceLostError(
      `the WebGPU device was lost (${reason}) while reading back ${what}; every tensor on it is gone. Call ` +
        "`await init()` to start again.",
    ),
    { cause },
  );
}

/**
 * Reads `size` bytes of a buffer back to the CPU, after every dispatch recorded so far. `what` names the data in
 * errors (e.g. "a tensor of shape [2, 3] (f32, 24 bytes)"): a device lost before or during the readback is a
 * DeviceLostError naming it, also when WebGPU reports the loss first as a failed mapAsync.
 */
export async function readback(
  buffer: GPUBuffer,
  byteOffset: number,
  size: number,
  what = `${size} bytes of a GPU buffer`,
): Promise<ArrayBuffer> {
  let device: GPUDevice;
  try {
    ({ device } = gpu());
  } catch (e) {
    const lost = deviceLostReason();
    if (e instanceof DeviceLostError && lost !== null) throw lostWhileReading(lost, what, e);
    throw e;
  }
  caches(device);
  const padded = Math.max(4, Math.ceil(size / 4) * 4);
  const staging = device.createBuffer({
    size: padded,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  begin(device);
  endPass();
  encoder!.copyBufferToBuffer(buffer, byteOffset, staging, 0, padded);
  flush();
  try {
    await staging.mapAsync(GPUMapMode.READ);
  } catch (e) {
    staging.destroy();
    // a lost device fails the map before `device.lost` settles: wait for it, so the loss is named as such
    const lost = deviceLostReason() ?? await deviceLossReason(device, LOSS_WAIT_MS);
    if (lost !== null) {
      // what the lost device's batches reported is moot: settled and dropped, so no later sync() throws it
      await Promise.all(errorChecks.splice(0));
      deferredError = null;
      throw lostWhileReading(lost, what, e);
    }
    await checkErrors();
    throw e;
  }
  const out = staging.getMappedRange().slice(0, size);
  staging.unmap();
  staging.destroy();
  await checkErrors();
  return out;
}

/** Waits until the GPU has finished every recorded dispatch, and throws any error they raised. */
export async function sync(): Promise<void> {
  const { device } = gpu();
  flush();
  await device.queue.onSubmittedWorkDone();
  await checkErrors();
}

/** How many uploaded bytes `settleUploads` lets wait for a submission by default. */
export const UPLOAD_SETTLE_BYTES = 16 * 2 ** 20;

/**
 * After more than `limit` bytes of uploads since the last submission: submits them and waits until the GPU has
 * written them, so that their staging copies are freed before more are made. A loop that uploads a model's
 * weights calls it after each tensor, which keeps the staging memory in flight near `limit` instead of the whole
 * model's size (whose pages would stay resident in the driver's allocator afterwards).
 */
export async function settleUploads(limit = UPLOAD_SETTLE_BYTES): Promise<void> {
  if (uploadedBytes <= limit) return;
  await sync();
  // wgpu frees a finished submission's staging while it polls the device: an empty submission waited on lets
  // that poll run before the next upload asks for staging memory
  const { device } = gpu();
  device.queue.submit([]);
  await device.queue.onSubmittedWorkDone();
}

const cacheHolders: (() => void)[] = [];

/** Registers what `emptyCache` should also let go of (ops' own persistent GPU resources). */
export function onEmptyCache(release: () => void): void {
  cacheHolders.push(release);
}

/**
 * Destroys the pool's free buffers (after submitting pending work that may still use them), and what ops
 * registered with `onEmptyCache` (the matmul's operand textures).
 */
export function emptyCache(): void {
  flush();
  clearBindGroups();
  emptyPool();
  for (const release of cacheHolders) release();
}

/**
 * Gives back to the driver the pool's buffers that stayed free since the previous call (after submitting pending
 * work), and drops the cached bind groups that name them. The trainers call it once per optimizer step, so what
 * the pool holds follows the recent steps' needs and does not grow with the step count.
 */
export function trimPool(): void {
  flush();
  dropBindGroups(trimIdleBuffers());
}

/** Number of dispatches recorded since the process started (for tests and benchmarks). */
export function dispatchCounter(): number {
  return dispatchCount;
}

/** Workgroup counts for `n` invocations in workgroups of `size`, split over x and y past the 65535 limit. */
export function grid1d(n: number, size: number): [number, number] {
  const groups = Math.ceil(n / size);
  const max = gpu().info.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

/** Zeroes a byte range of a buffer, recorded in order with the dispatches. */
export function clearBuffer(buffer: GPUBuffer, byteOffset = 0, size?: number): void {
  const { device } = gpu();
  caches(device);
  begin(device);
  endPass();
  const n = size ?? buffer.size - byteOffset;
  encoder!.clearBuffer(buffer, byteOffset, Math.ceil(n / 4) * 4);
  used.add(buffer);
}
