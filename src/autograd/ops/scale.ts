/** scale(x, alpha, beta = 0) = alpha·x + beta. Backward: dx = alpha·dy. */
import { kernel } from "../../gpu/kernel.ts";
import { forRowBands } from "../../gpu/bands.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("scale.wgsl");

function scaleRaw(x: Tensor, alpha: number, beta: number): Tensor {
  const out = empty(x.shape);
  if (out.size > 0) {
    // in bands of elements where the tensors exceed one storage binding
    const operands = [x, out].map((t) => ({ binding: t.binding, perRow: 1 }));
    forRowBands("scale", x.size, operands, (n, buffers) => {
      dispatch({
        kernel: K,
        params: { n, alpha, beta },
        buffers,
        workgroups: grid1d(n, 256),
      });
    });
  }
  return out;
}

export function scale(x: Tensor, alpha: number, beta = 0): Tensor {
  return record("scale", [x], scaleRaw(x, alpha, beta), (dy) => [scaleRaw(dy, alpha, 0)]);
}
