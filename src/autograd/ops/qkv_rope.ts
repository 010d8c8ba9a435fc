/**
 * `qkvRope(y, positions, cfg, { H, HKV })`: a Llama layer's joined q/k/v projection output y [B, T, (H + 2·HKV)·D]
 * (`linearCat` of q_proj, k_proj, v_proj) as the three head tensors attention takes, q [B, H, T, D] and k, v
 * [B, HKV, T, D], with RoPE on q and k: one dispatch (kernels/qkv_rope.wgsl) for what reshape + permute three
 * times and rope twice did in five. The rotation is rope.ts's (same kernel code, same inv_freq table), so the
 * values are bit-identical.
 *
 * Backward: the three gradients dq, dk, dv become dy in one dispatch (inverse rotation, heads back to rows). The
 * op has three outputs and this autograd's nodes have one, so each output records its own node with y as input;
 * each node's backward keeps its gradient, and the last of the three to run (reverse topological order runs all
 * of them before y's) computes dy from all three and returns it, the other two return nothing, so y's gradient
 * needs no adds. Contract: when a backward reaches one output, it must reach all three (a Llama layer passes all
 * three to attention, whose backward gives each a gradient); an output that gets no gradient counts as zeros
 * only if its node still runs.
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { full } from "../../tensor/create.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import { resolveRope, type RopeConfig, ropeInvFreqTensor } from "./rope.ts";

const K = kernel("qkv_rope.wgsl");

export interface QkvHeads {
  /** Query heads. */
  H: number;
  /** Key/value heads. */
  HKV: number;
}

function dims(y: Tensor, positions: Tensor, cfg: RopeConfig, heads: QkvHeads) {
  const { D, R } = resolveRope(cfg);
  const { H, HKV } = heads;
  if (!Number.isInteger(H) || !Number.isInteger(HKV) || H < 1 || HKV < 1) {
    throw new RangeError(`qkvRope: H and HKV must be positive integers, got ${H} and ${HKV}`);
  }
  if (y.dtype !== "f32" || y.ndim !== 3 || y.shape[2] !== (H + 2 * HKV) * D) {
    throw new RangeError(
      `qkvRope: y must be f32 [B, T, (H + 2·HKV)·D] = [B, T, ${
        (H + 2 * HKV) * D
      }], got ${y.dtype} [${y.shape}]`,
    );
  }
  const [B, T] = y.shape;
  if (
    positions.dtype !== "i32" || positions.ndim !== 2 || positions.shape[0] !== B || positions.shape[1] !== T
  ) {
    throw new RangeError(
      `qkvRope: positions must be i32 [${B}, ${T}], got ${positions.dtype} [${positions.shape}]`,
    );
  }
  const total = B * T * (H + 2 * HKV) * (R / 2 + (D - R));
  return { B, T, H, HKV, D, R, total };
}

/** q, k, v heads of y with RoPE on q and k (see the header); recorded for backward. */
export function qkvRope(
  y: Tensor,
  positions: Tensor,
  cfg: RopeConfig,
  heads: QkvHeads,
): [Tensor, Tensor, Tensor] {
  y.assertAlive();
  positions.assertAlive();
  const { B, T, H, HKV, D, R, total } = dims(y, positions, cfg, heads);
  const invFreq = ropeInvFreqTensor(cfg);
  const q = empty([B, H, T, D]);
  const k = empty([B, HKV, T, D]);
  const v = empty([B, HKV, T, D]);
  const params = { T, H, HKV, D, R, total };
  if (total > 0) {
    dispatch({
      kernel: K,
      entry: "forward",
      params: { ...params, dir: 1 },
      buffers: [positions.binding, invFreq.binding, y.binding, q.binding, k.binding, v.binding],
      workgroups: grid1d(total, 128),
    });
  }
  const outs = [q, k, v];
  const grads: (Tensor | null)[] = [null, null, null];
  let ran = 0;
  const joint = (i: number) => (g: Tensor): (Tensor | null)[] => {
    grads[i] = view(g, g.shape); // kept past the caller's dispose of g
    if (++ran < 3) return [null, null];
    const gs = grads.map((t, j) => t ?? full(outs[j].shape, 0));
    const dy = empty(y.shape);
    if (total > 0) {
      dispatch({
        kernel: K,
        entry: "backward",
        params: { ...params, dir: -1 },
        buffers: [
          positions.binding,
          invFreq.binding,
          positions.binding,
          gs[0].binding,
          gs[1].binding,
          gs[2].binding,
          dy.binding,
        ],
        workgroups: grid1d(total, 128),
      });
    }
    for (const t of gs) t.dispose();
    grads.fill(null);
    ran = 0;
    return [dy, null];
  };
  return [
    record("qkvRope", [y, positions], q, joint(0)),
    record("qkvRope", [y, positions], k, joint(1)),
    record("qkvRope", [y, positions], v, joint(2)),
  ];
}
