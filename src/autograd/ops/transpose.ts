/**
 * transpose(x): swaps the last two axes, [..., M, N] → [..., N, M], as a real copy into contiguous memory
 * (kernels/transpose.wgsl, 32×32 tiles through shared memory). Backward: transpose dy back.
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("transpose.wgsl");
const TILE = 32;

function transposeRaw(x: Tensor): Tensor {
  const M = x.shape[x.ndim - 2];
  const N = x.shape[x.ndim - 1];
  const out = empty([...x.shape.slice(0, -2), N, M], x.dtype);
  if (out.size === 0) return out;
  const B = x.size / (M * N);
  const tilesX = Math.ceil(N / TILE);
  const tilesY = Math.ceil(M / TILE);
  const tiles = tilesX * tilesY * B;
  dispatch({
    kernel: K,
    params: { M, N, tilesX, tilesY, tiles },
    buffers: [x.binding, out.binding],
    workgroups: grid1d(tiles, 1),
  });
  return out;
}

/** Swaps the last two axes (a contiguous copy). f32 or i32 (the bits are moved unchanged). */
export function transpose(x: Tensor): Tensor {
  x.assertAlive();
  if (x.ndim < 2) throw new RangeError(`transpose: needs at least 2 axes, got shape [${x.shape}]`);
  return record("transpose", [x], transposeRaw(x), (dy) => [transposeRaw(dy)]);
}
