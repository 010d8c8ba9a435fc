/**
 * KV cache for generation: per layer the keys and values [B, HKV, capacity, D] of the positions seen so far,
 * in buffers with room to grow. Each step writes its new positions after the cached ones, in place
 * (kernels/kv_append.wgsl), so a step costs O(new positions), not O(all of them); attention reads the first
 * `length` positions (`keyLength`). When a step does not fit, the layer moves to a buffer twice as large (or as
 * large as needed). `generate` sizes the cache for the prompt and every new token, so it never moves. Generation
 * runs without gradients; the cache owns its tensors (kept out of scopes) until `dispose()`.
 *
 * `appendRotated` is the decoding step's fused form: it takes the raw q/k/v projections, applies RoPE to q and k
 * and writes k and v into the cache in one dispatch (kernels/rope_kv_append.wgsl) instead of four (two RoPE, two
 * appends), with the same values.
 */
import { resolveRope, type RopeConfig, ropeInvFreqTensor } from "../autograd/ops/rope.ts";
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("kv_append.wgsl");
const ROPE_APPEND = kernel("rope_kv_append.wgsl");

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
    const used = this.reserve(l, B, H, T, D, `[${k.shape}]`);
    writePositions(k, this.keys[l]!, T, used);
    writePositions(v, this.values[l]!, T, used);
    this.lengths[l] = used + T;
    return { k: this.keys[l]!, v: this.values[l]!, length: used + T };
  }

  /**
   * The fused decoding step of layer `l`: q [B, T, H·D], k and v [B, T, HKV·D] as the projections give them
   * (heads not yet moved to the front), positions [B, T] (i32). Rotates q and k by `rope` (as `rope` does),
   * writes the rotated keys and the values after the cached positions, and returns the rotated queries
   * [B, H, T, D] (a new tensor), the cache's buffers and the number of positions that hold keys.
   */
  appendRotated(
    l: number,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    positions: Tensor,
    rope: RopeConfig,
  ): { q: Tensor; k: Tensor; v: Tensor; length: number } {
    const { D, R } = resolveRope(rope);
    const [B, T, QC] = q.shape;
    const KC = k.shape[2];
    const H = QC / D, HKV = KC / D;
    if (
      q.ndim !== 3 || k.ndim !== 3 || !Number.isInteger(H) || !Number.isInteger(HKV) || HKV === 0 ||
      k.shape[0] !== B || k.shape[1] !== T || v.shape.join() !== k.shape.join()
    ) {
      throw new RangeError(
        `kv cache: appendRotated takes q [B, T, H·${D}] and k, v [B, T, HKV·${D}], got [${q.shape}], [${k.shape}], ` +
          `[${v.shape}]`,
      );
    }
    if (positions.dtype !== "i32" || positions.shape.join() !== `${B},${T}`) {
      throw new RangeError(
        `kv cache: positions must be i32 [${B}, ${T}], got ${positions.dtype} [${positions.shape}]`,
      );
    }
    const used = this.reserve(l, B, HKV, T, D, `[${B}, ${HKV}, ${T}, ${D}]`);
    const qo = empty([B, H, T, D]);
    const nRot = B * T * (H + HKV) * (R / 2 + (D - R));
    const total = nRot + B * T * HKV * D;
    if (total > 0) {
      dispatch({
        kernel: ROPE_APPEND,
        params: { T, H, HKV, D, R, cap: this.keys[l]!.shape[2], t0: used, nRot, total },
        buffers: [
          q.binding,
          k.binding,
          v.binding,
          positions.binding,
          ropeInvFreqTensor(rope).binding,
          qo.binding,
          this.keys[l]!.binding,
          this.values[l]!.binding,
        ],
        workgroups: grid1d(total, 128),
      });
    }
    this.lengths[l] = used + T;
    return { q: qo, k: this.keys[l]!, v: this.values[l]!, length: used + T };
  }

  /** Makes room in layer `l` for T more positions of [B, H, *, D]; returns the positions cached so far. */
  private reserve(l: number, B: number, H: number, T: number, D: number, what: string): number {
    const old = this.keys[l];
    if (old && (old.shape[0] !== B || old.shape[1] !== H || old.shape[3] !== D)) {
      throw new RangeError(`kv cache: cannot append ${what} to [${old.shape}]`);
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
    return used;
  }

  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.fill(null);
    this.values.fill(null);
    this.lengths.fill(0);
  }
}
