/** Layer functions shared by the model implementations. */
import { add } from "../autograd/ops/binary.ts";
import { matmul } from "../autograd/ops/matmul.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * y = x·Wᵀ + b for nn.Linear weights W [out, in] (`layout: "out_in"`), or y = x·W + b for GPT-2's Conv1D weights
 * W [in, out] (`layout: "in_out"`). x is [..., in]; it is flattened to rows for one 2-D matmul.
 */
export function linear(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  layout: "out_in" | "in_out" = "out_in",
): Tensor {
  const inF = x.shape[x.ndim - 1];
  const [wIn, out] = layout === "out_in" ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  if (w.ndim !== 2 || wIn !== inF) {
    throw new RangeError(`linear: input [${x.shape}] does not match weight [${w.shape}] (${layout})`);
  }
  const rows = x.size / inF;
  const x2 = reshape(x, [rows, inF]);
  let y = matmul(x2, w, { transB: layout === "out_in" });
  if (b) y = add(y, b);
  return reshape(y, [...x.shape.slice(0, -1), out]);
}
