/**
 * loraDropout(x, p, seed): inverted dropout on the input of a LoRA branch (PEFT's `lora_dropout`), with a
 * counter-based mask (kernels/lora_dropout.wgsl): element i is kept iff hash(i, seed) ≥ floor(p·2^32), kept
 * elements are scaled by 1/(1 − p). Backward applies the same mask (same seed) to dy, so no mask is stored.
 * p = 0 returns x itself.
 */
import { record } from "../autograd/record.ts";
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("lora_dropout.wgsl");

function threshold(p: number): number {
  return Math.min(0xffffffff, Math.floor(p * 4294967296));
}

function dropoutRaw(x: Tensor, p: number, seed: number): Tensor {
  const out = empty(x.shape);
  if (out.size > 0) {
    dispatch({
      kernel: K,
      params: { n: x.size, seed: seed >>> 0, threshold: threshold(p), scale: 1 / (1 - p) },
      buffers: [x.binding, out.binding],
      workgroups: grid1d(x.size, 256),
    });
  }
  return out;
}

/** Inverted dropout with probability `p` in [0, 1) and a u32 `seed` selecting the mask. */
export function loraDropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`loraDropout: p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`loraDropout: seed must be a u32, got ${seed}`);
  }
  if (x.dtype !== "f32") throw new TypeError(`loraDropout: expected an f32 tensor, got ${x.dtype}`);
  if (p === 0) return x;
  return record("lora_dropout", [x], dropoutRaw(x, p, seed), (dy) => [dropoutRaw(dy, p, seed)]);
}
