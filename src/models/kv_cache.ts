/**
 * KV cache for generation: per layer the keys and values [B, HKV, T, D] seen so far. Each step appends the new
 * positions (kernels/kv_append.wgsl) and attention runs the new queries against every cached key. Generation runs
 * without gradients; the cache owns its tensors (kept out of scopes) until `dispose()`.
 */
import { kernel } from "../gpu/kernel.ts";
import { Params } from "../gpu/params.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("kv_append.wgsl");

function append(old: Tensor | null, next: Tensor): Tensor {
  if (!old) {
    const copy = empty(next.shape);
    dispatch({
      kernel: K,
      params: new Params().u32(next.size, 0, next.shape[2], next.shape[3]),
      buffers: [next.binding, next.binding, copy.binding],
      workgroups: grid1d(next.size, 256),
    });
    return copy.keep();
  }
  const [B, H, T0, D] = old.shape;
  const T1 = next.shape[2];
  if (next.shape[0] !== B || next.shape[1] !== H || next.shape[3] !== D) {
    throw new RangeError(`kv cache: cannot append [${next.shape}] to [${old.shape}]`);
  }
  const out = empty([B, H, T0 + T1, D]);
  dispatch({
    kernel: K,
    params: new Params().u32(out.size, T0, T1, D),
    buffers: [old.binding, next.binding, out.binding],
    workgroups: grid1d(out.size, 256),
  });
  old.dispose();
  return out.keep();
}

export class KVCache {
  private keys: (Tensor | null)[];
  private values: (Tensor | null)[];

  constructor(readonly numLayers: number) {
    this.keys = new Array(numLayers).fill(null);
    this.values = new Array(numLayers).fill(null);
  }

  /** Cached positions so far. */
  get length(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  /** Appends layer `l`'s new keys and values [B, HKV, T, D]; returns the full cached [B, HKV, T_all, D]. */
  update(l: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    this.keys[l] = append(this.keys[l], k);
    this.values[l] = append(this.values[l], v);
    return { k: this.keys[l]!, v: this.values[l]! };
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
  }
}
