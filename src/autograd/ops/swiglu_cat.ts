/**
 * `swigluCat(gu)` = silu(g)·u for a joined gate/up projection gu [..., 2·I] (`linearCat` of gate_proj and
 * up_proj: g the first I columns of each row, u the last I), giving [..., I]: swiglu.ts's op over one input, so
 * that its backward writes the one [..., 2·I] gradient the joined projection's backward reads (no split of the
 * projection's output, no join of the two gradients). Values are swiglu's, bit for bit (kernels/swiglu_cat.wgsl).
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("swiglu_cat.wgsl");

export function swigluCat(gu: Tensor): Tensor {
  gu.assertAlive();
  const last = gu.shape[gu.ndim - 1];
  if (gu.dtype !== "f32" || gu.ndim < 1 || last % 2 !== 0) {
    throw new RangeError(`swigluCat: expected an f32 tensor [..., 2·I], got ${gu.dtype} [${gu.shape}]`);
  }
  const I = last / 2;
  const y = empty([...gu.shape.slice(0, -1), I]);
  if (y.size > 0) {
    dispatch({
      kernel: K,
      params: { n: y.size, I },
      buffers: [gu.binding, y.binding],
      workgroups: grid1d(y.size, 256),
    });
  }
  return record("swigluCat", [gu], y, (dy) => {
    const dgu = empty(gu.shape);
    if (y.size > 0) {
      dispatch({
        kernel: K,
        entry: "grad",
        params: { n: y.size, I },
        buffers: [gu.binding, dgu.binding, dy.binding],
        workgroups: grid1d(y.size, 256),
      });
    }
    return [dgu];
  });
}
