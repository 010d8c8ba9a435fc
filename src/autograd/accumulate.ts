/** Gradient accumulation kernels used by backward(): a + b into a new tensor, and b added into a in place. */
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const ACC = kernel("accumulate.wgsl");
const ACC_INPLACE = kernel("accumulate_inplace.wgsl");

function sameShape(a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new RangeError(`gradient shapes differ: [${a.shape}] vs [${b.shape}]`);
}

/** a + b (same shapes), no graph. */
export function addSame(a: Tensor, b: Tensor): Tensor {
  sameShape(a, b);
  const out = empty(a.shape);
  if (out.size > 0) {
    dispatch({
      kernel: ACC,
      params: { n: a.size },
      buffers: [a.binding, b.binding, out.binding],
      workgroups: grid1d(a.size, 256),
    });
  }
  return out;
}

/** acc += b in place (same shapes), no graph. */
export function addInPlace(acc: Tensor, b: Tensor): void {
  sameShape(acc, b);
  if (acc.size === 0) return;
  dispatch({
    kernel: ACC_INPLACE,
    params: { n: acc.size },
    buffers: [acc.binding, b.binding],
    workgroups: grid1d(acc.size, 256),
  });
}
