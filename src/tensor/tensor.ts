/**
 * Tensor: a contiguous array on the GPU with a shape and a dtype. Reshapes are views sharing one refcounted
 * storage buffer. Autograd fields (`requiresGrad`, `grad`, `node`) are filled by src/autograd.
 */
import { acquireBuffer, releaseBuffer } from "../gpu/pool.ts";
import { type BufferBinding, readback } from "../gpu/queue.ts";
import { track, untrack } from "./track.ts";

export type DType = "f32" | "i32";

/**
 * The GPU buffer behind one or more tensor views. Its values may be evicted (`evict`): the buffer goes back to
 * the pool at once and the next use of `buffer` recomputes the values into a fresh one (activations that are
 * cheaper to recompute during backward than to keep; src/autograd/recompute.ts).
 */
export class Storage {
  refs = 1;
  private _buffer: GPUBuffer | null;
  private refill: (() => Storage) | null = null;
  private refilling = false;
  constructor(buffer: GPUBuffer, readonly bytes: number) {
    this._buffer = buffer;
  }
  static allocate(bytes: number): Storage {
    return new Storage(acquireBuffer(bytes), bytes);
  }
  /** The buffer; an evicted storage first recomputes its values into a new one. */
  get buffer(): GPUBuffer {
    if (this._buffer) return this._buffer;
    if (!this.refill || this.refs <= 0) throw new Error("a tensor storage was used after it was released");
    if (this.refilling) {
      throw new Error("an evicted tensor's recompute reads the tensor itself (or a view of it)");
    }
    this.refilling = true;
    let fresh: Storage;
    try {
      fresh = this.refill();
    } finally {
      this.refilling = false;
    }
    if (fresh.bytes !== this.bytes) {
      throw new Error(`recomputed storage has ${fresh.bytes} bytes, expected ${this.bytes}`);
    }
    this._buffer = fresh.takeBuffer();
    return this._buffer;
  }
  /** Whether the values are in a buffer now (false while evicted). */
  get resident(): boolean {
    return this._buffer !== null;
  }
  /** Gives the buffer back to the pool now; the next use of `buffer` calls `refill` for a storage of the values. */
  evict(refill: () => Storage): void {
    if (this._buffer) releaseBuffer(this._buffer);
    this._buffer = null;
    this.refill = refill;
  }
  /** Hands this storage's buffer to another owner (this storage then holds none and releases none). */
  private takeBuffer(): GPUBuffer {
    const b = this.buffer;
    this._buffer = null;
    this.refill = null;
    return b;
  }
  release(): void {
    if (--this.refs === 0) {
      if (this._buffer) releaseBuffer(this._buffer);
      this._buffer = null;
      this.refill = null;
    }
  }
}

/** How a tensor was computed: the op's inputs and its backward rule. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where an input needs none), given the gradient of the output. */
  backward(gradOutput: Tensor): (Tensor | null)[];
}

/** Options of `backward()`. */
export interface BackwardOptions {
  /**
   * Dispose every computed tensor of the graph (not the root, not the leaves) as soon as its gradient has been
   * passed on to its inputs, as PyTorch frees a graph's saved activations during backward: backward's peak memory
   * is then the activations or the gradients, not both. Those tensors cannot be read afterwards (take what you need
   * from them first). The trainers' steps use it. Default false.
   */
  releaseGraph?: boolean;
}

type BackwardHook = (t: Tensor, grad?: Tensor, opts?: BackwardOptions) => void;
let backwardHook: BackwardHook | null = null;

/** Installed by src/autograd so `Tensor.backward()` works without the tensor layer importing it. */
export function setBackwardHook(fn: BackwardHook): void {
  backwardHook = fn;
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  /** Optional human name (parameter names). */
  name?: string;
  private _disposed = false;
  private _freed = false;

  constructor(readonly storage: Storage, shape: readonly number[], readonly dtype: DType = "f32") {
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    if (this.size * 4 > storage.bytes) {
      throw new RangeError(
        `tensor of shape [${shape}] needs ${this.size * 4} bytes, storage has ${storage.bytes}`,
      );
    }
    track(this);
  }

  get ndim(): number {
    return this.shape.length;
  }
  get bytes(): number {
    return this.size * 4;
  }
  get disposed(): boolean {
    return this._disposed;
  }

  /** The binding of this tensor's bytes, for a dispatch. */
  get binding(): BufferBinding {
    this.assertAlive();
    return { buffer: this.storage.buffer, offset: 0, size: Math.max(4, this.bytes) };
  }

  assertAlive(): void {
    if (this._disposed) throw new Error(`tensor #${this.id} [${this.shape}] was used after it was disposed`);
    if (this._freed) {
      throw new Error(
        `tensor #${this.id} [${this.shape}] was read after free() released its values ` +
          `(an op's backward reads it: it must not be freed early)`,
      );
    }
  }

  /** Releases the GPU memory (the storage's, once no view uses it). Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    if (!this._freed) this.storage.release();
    this.node = null;
  }

  /**
   * Releases the values now (the storage's, once no view uses it) but keeps the tensor's place in the autograd
   * graph, so gradients still flow through it. For a forward's temporaries that no recorded backward reads: a
   * projection whose output is only permuted and rotated, a residual branch once it is added. The caller vouches
   * for that; reading the tensor afterwards (a dispatch, a readback, a backward that saved it) throws. Idempotent.
   */
  free(): void {
    if (this._disposed || this._freed) return;
    this._freed = true;
    this.storage.release();
  }

  /** Keeps this tensor alive past the enclosing `scope()`s. */
  keep(): this {
    untrack(this);
    return this;
  }

  /** Reads the values back as floats (i32 values are converted; use `toInt32Array()` for exact integers). */
  async toArray(): Promise<Float32Array> {
    this.assertAlive();
    const bytes = await readback(this.storage.buffer, 0, this.bytes, this.description());
    return this.dtype === "i32" ? Float32Array.from(new Int32Array(bytes)) : new Float32Array(bytes);
  }

  /**
   * Reads elements [start, start + count) back as floats (an f32 tensor): a large tensor read in parts keeps the
   * readback's staging and host copies small.
   */
  async readRange(start: number, count: number): Promise<Float32Array> {
    this.assertAlive();
    if (this.dtype !== "f32") {
      throw new TypeError(`readRange() needs an f32 tensor, this one is ${this.dtype}`);
    }
    if (
      !Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 ||
      start + count > this.size
    ) {
      throw new RangeError(`readRange(${start}, ${count}) is outside a tensor of ${this.size} elements`);
    }
    if (count === 0) return new Float32Array(0);
    const bytes = await readback(this.storage.buffer, 4 * start, 4 * count, this.description());
    return new Float32Array(bytes);
  }

  /** Reads an i32 tensor back exactly. */
  async toInt32Array(): Promise<Int32Array> {
    this.assertAlive();
    if (this.dtype !== "i32") {
      throw new TypeError(`toInt32Array() needs an i32 tensor, this one is ${this.dtype}`);
    }
    return new Int32Array(await readback(this.storage.buffer, 0, this.bytes, this.description()));
  }

  /** What a readback error calls this tensor: "a tensor of shape [2, 3] (f32, 24 bytes)". */
  private description(): string {
    return `a tensor of shape [${this.shape.join(", ")}] (${this.dtype}, ${this.bytes} bytes)`;
  }

  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`item() needs a one-element tensor, got shape [${this.shape}]`);
    return (await this.toArray())[0];
  }

  /** Reverse-mode differentiation from this tensor (a scalar unless `grad` is given). */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    if (!backwardHook) throw new Error("autograd is not loaded (import webdpo's mod.ts)");
    backwardHook(this, grad, opts);
  }

  toString(): string {
    return `Tensor(#${this.id}, [${this.shape}], ${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/** `t.free()` for each tensor (see Tensor.free). */
export function free(...ts: Tensor[]): void {
  for (const t of ts) t.free();
}

/** A new tensor sharing `t`'s storage with another shape of the same size (no copy, no autograd). */
export function view(t: Tensor, shape: readonly number[]): Tensor {
  t.assertAlive();
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== t.size) throw new RangeError(`cannot view [${t.shape}] (${t.size} elements) as [${shape}]`);
  t.storage.refs++;
  return new Tensor(t.storage, shape, t.dtype);
}

/** An uninitialised tensor (op outputs). */
export function empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape [${shape}]`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  return new Tensor(Storage.allocate(Math.max(4, size * 4)), shape, dtype);
}
