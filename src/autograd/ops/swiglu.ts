/**
 * `swiglu(g, u)` = silu(g)·u elementwise (Llama's gated MLP: silu(gate_proj(x))·up_proj(x)), one op with its
 * backward: du = dy·silu(g), dg = dy·u·σ(g)(1 + g(1 − σ(g))). Unlike unary("silu") then mul, it never stores the
 * activated gate: the forward keeps g and u (which the projections' backward needs anyway) and the backward is
 * one dispatch (kernels/swiglu.wgsl).
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("swiglu.wgsl");

export function swiglu(g: Tensor, u: Tensor): Tensor {
  g.assertAlive();
  u.assertAlive();
  if (g.dtype !== "f32" || u.dtype !== "f32") {
    throw new TypeError(`swiglu: expected f32 tensors, got ${g.dtype} and ${u.dtype}`);
  }
  if (g.shape.join() !== u.shape.join()) {
    throw new RangeError(`swiglu: gate [${g.shape}] and up [${u.shape}] must have the same shape`);
  }
  const y = empty(g.shape);
  if (y.size > 0) {
    dispatch({
      kernel: K,
      params: { n: y.size },
      buffers: [g.binding, u.binding, y.binding],
      workgroups: grid1d(y.size, 256),
    });
  }
  return record("swiglu", [g, u], y, (dy) => {
    const dg = empty(g.shape);
    const du = empty(u.shape);
    if (dg.size > 0) {
      dispatch({
        kernel: K,
        entry: "grad",
        params: { n: dg.size },
        buffers: [g.binding, u.binding, dg.binding, dy.binding, du.binding],
        workgroups: grid1d(dg.size, 256),
      });
    }
    return [dg, du];
  });
}
