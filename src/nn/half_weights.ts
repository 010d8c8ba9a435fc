/**
 * Frozen weights stored in 16 bits: a DPO reference kept as float16 or bfloat16 (`ref_model_init_kwargs:
 * {torch_dtype: float16}`) holds half the bytes of its f32 copy. Computing still happens in f32: a module's
 * `param(name)` of a packed weight unpacks an f32 copy (kernels/half_pack.wgsl), which lives as long as the
 * `scope()` it was made in: one decoder layer's weights at a time in a no-grad forward (CausalLM.runLayers runs
 * each layer in a scope of its own).
 *
 * Both conversions round to nearest even in integer arithmetic, so the values are the same on every adapter and
 * equal to PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)` of the same f32 weights.
 */
import { gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("half_pack.wgsl");

/** The 16-bit formats a frozen weight can be stored in (transformers' torch_dtype names). */
export type HalfDtype = "float16" | "bfloat16";

/** A weight stored in 16 bits: two values per 32-bit word of `data` (an i32 tensor of ceil(size / 2) words). */
export class PackedWeight {
  constructor(readonly data: Tensor, readonly shape: readonly number[], readonly dtype: HalfDtype) {}

  /** Elements of the weight. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes held on the GPU. */
  get bytes(): number {
    return this.data.bytes;
  }

  dispose(): void {
    this.data.dispose();
  }
}

let chunkOverride: number | null = null;

/** @internal Elements per dispatch (a multiple of 128), so tests cover the chunk walk; null restores the default. */
export function setHalfChunkElements(n: number | null): void {
  if (n !== null && (!Number.isInteger(n) || n < 128 || n % 128 !== 0)) {
    throw new RangeError("setHalfChunkElements: a positive multiple of 128");
  }
  chunkOverride = n;
}

/**
 * Elements per dispatch: what one storage binding holds of the f32 side (a multiple of 128, so both sides' byte
 * offsets are multiples of 256, the portable offset alignment), at most 2^24.
 */
function chunkElements(): number {
  if (chunkOverride !== null) return chunkOverride;
  const limit = gpu().device.limits.maxStorageBufferBindingSize;
  return Math.max(128, Math.min(2 ** 24, Math.floor(limit / 4 / 128) * 128));
}

/** Runs `entry` over n elements, a binding's worth at a time: f32 side `wide`, packed side `narrow`. */
function convert(entry: "pack" | "unpack", wide: Tensor, narrow: Tensor, n: number, dtype: HalfDtype): void {
  const step = chunkElements();
  for (let off = 0; off < n; off += step) {
    const len = Math.min(step, n - off);
    const words = Math.ceil(len / 2);
    const w = { buffer: wide.storage.buffer, offset: off * 4, size: len * 4 };
    const h = { buffer: narrow.storage.buffer, offset: off * 2, size: words * 4 };
    dispatch({
      kernel: K,
      entry,
      params: { n: len, bf16: dtype === "bfloat16" ? 1 : 0 },
      buffers: entry === "pack" ? [w, h] : [h, w],
      workgroups: grid1d(words, 256),
    });
  }
}

/** `t` rounded to 16 bits and packed (kept past enclosing scopes, like a parameter); `t` is left as it was. */
export function packHalf(t: Tensor, dtype: HalfDtype): PackedWeight {
  if (t.dtype !== "f32") throw new TypeError(`packHalf: an f32 tensor is needed, got ${t.dtype}`);
  t.assertAlive();
  const data = empty([Math.max(1, Math.ceil(t.size / 2))], "i32").keep();
  if (t.size > 0) convert("pack", t, data, t.size, dtype);
  return new PackedWeight(data, t.shape, dtype);
}

/** Packs `t` (f32, the weight's shape) into `p` in place: `p` then holds `t` rounded to 16 bits. */
export function repackHalf(t: Tensor, p: PackedWeight): void {
  if (t.dtype !== "f32" || t.size !== p.size) {
    throw new RangeError(
      `repackHalf: an f32 tensor of ${p.size} elements is needed, got [${t.shape}] ${t.dtype}`,
    );
  }
  t.assertAlive();
  p.data.assertAlive();
  if (t.size > 0) convert("pack", t, p.data, t.size, p.dtype);
}

/** A new f32 tensor of the packed weight's values (in the current scope, like any op's output). */
export function unpackHalf(p: PackedWeight): Tensor {
  p.data.assertAlive();
  const out = empty(p.shape);
  if (p.size > 0) convert("unpack", out, p.data, p.size, p.dtype);
  return out;
}

/**
 * The storage format that `torch_dtype` (or `dtype`) of a model's init kwargs asks for: null for f32 (unset,
 * "float32", "auto"), a HalfDtype for "float16"/"bfloat16" (and torch's aliases "half", "bf16"...). Anything else
 * throws a RangeError naming `where`.
 */
export function halfDtypeOf(
  kwargs: Readonly<Record<string, unknown>> | null,
  where: string,
): HalfDtype | null {
  if (!kwargs) return null;
  const keys = ["torch_dtype", "dtype"].filter((k) => kwargs[k] !== undefined && kwargs[k] !== null);
  if (keys.length === 2 && kwargs.torch_dtype !== kwargs.dtype) {
    throw new RangeError(`${where}: torch_dtype and dtype differ; give one`);
  }
  if (keys.length === 0) return null;
  const raw = kwargs[keys[0]];
  const v = typeof raw === "string" ? raw.replace(/^torch\./, "").toLowerCase() : raw;
  if (v === "float32" || v === "float" || v === "fp32" || v === "auto") return null;
  if (v === "float16" || v === "half" || v === "fp16") return "float16";
  if (v === "bfloat16" || v === "bf16") return "bfloat16";
  throw new RangeError(
    `${where}: ${keys[0]} ${
      JSON.stringify(raw)
    } is not a dtype webdpo stores weights in; use float32, float16 ` +
      `or bfloat16`,
  );
}
