/**
 * KV cache for generation: per layer the keys and values [B, HKV, capacity, D] of the positions seen so far,
 * in buffers with room to grow. Each step writes its new positions after the cached ones, in place
 * (kernels/kv_append.wgsl), so a step costs O(new positions), not O(all of them); attention reads the first
 * `length` positions (`keyLength`). When a step does not fit, the layer moves to a buffer twice as large (or as
 * large as needed). `generate` sizes the cache for the prompt and every new token, so it never moves. Generation
 * runs without gradients; the cache owns its tensors (kept out of scopes) until `dispose()`.
 */
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("kv_append.wgsl");

/** Copies positions 0 .. count−1 of every (b, h) of src [B, H, *, D] to positions t0 .. of dst [B, H, *, D]. */
function writePositions(src: Tensor, dst: Tensor, count: number, t0: number): void {
  const [B, H, , D] = dst.shape;
  const n = B * H * count * D;
  if (n === 0) return;
  dispatch({
    kernel: K,
    params: { n, D, count, src_T: src.shape[2], dst_T: dst.shape[2], t0 },
    buffers: [src.binding, dst.binding],
    workgroups: grid1d(n, 256),
  });
}

export class KVCache {
  private keys: (Tensor | null)[];
  private values: (Tensor | null)[];
  private lengths: number[];

  /** `capacity`: positions to allocate room for at the first update (more are added when needed). */
  constructor(readonly numLayers: number, private readonly capacity = 0) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
    this.lengths = new Array(numLayers).fill(0);
  }

  /** Cached positions so far (of layer 0). */
  get length(): number {
    return this.lengths[0];
  }

  /**
   * Writes layer `l`'s new keys and values [B, HKV, T, D] after its cached positions. Returns the cache's
   * buffers [B, HKV, capacity, D] and the number of positions that hold keys (pass it to attention as
   * `keyLength`).
   */
  update(l: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor; length: number } {
    const [B, H, T, D] = k.shape;
    if (v.shape.join() !== k.shape.join()) {
      throw new RangeError(`kv cache: values [${v.shape}] must have the keys' shape [${k.shape}]`);
    }
    const old = this.keys[l];
    if (old && (old.shape[0] !== B || old.shape[1] !== H || old.shape[3] !== D)) {
      throw new RangeError(`kv cache: cannot append [${k.shape}] to [${old.shape}]`);
    }
    const used = this.lengths[l];
    const need = used + T;
    if (!old || need > old.shape[2]) {
      const room = Math.max(need, this.capacity, old ? 2 * old.shape[2] : 0);
      for (const which of [this.keys, this.values]) {
        const grown = empty([B, H, room, D]).keep();
        const prev = which[l];
        if (prev) {
          writePositions(prev, grown, used, 0);
          prev.dispose();
        }
        which[l] = grown;
      }
    }
    writePositions(k, this.keys[l]!, T, used);
    writePositions(v, this.values[l]!, T, used);
    this.lengths[l] = need;
    return { k: this.keys[l]!, v: this.values[l]!, length: need };
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.lengths.fill(0);
  }
}
