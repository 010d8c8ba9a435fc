/**
 * gatherRows(table [V, C], indices) → [...indices.shape, C]: the embedding lookup (out[n] = table[indices[n]]).
 *
 * Indices come from the data, so the op takes them on the host: either an Int32Array (uploaded here; its shape is
 * `opts.shape`, default [N]), or an i32 tensor already on the GPU together with its host copy `opts.host` (the
 * collator has both; nothing is read back). The host copy is validated (0 ≤ index < V, else a RangeError naming
 * the position, the index and V) and kept (copied) for the backward. Where the table needs no gradient, an i32
 * tensor may come alone: indices the GPU made, in range by construction (greedy decoding's argmax); they are not
 * checked.
 *
 * Backward: the table gradient is a deterministic scatter-add planned on the host. A counting sort groups the
 * positions of each distinct row in increasing order; kernels/gather_rows_backward.wgsl then sums each row's
 * gradient rows in that order (no atomics: two runs are bit-identical) and writes dTable [V, C], exactly 0 for
 * rows never gathered. Indices get no gradient. On CPU adapters, whose invocations stop silently after about 65 535
 * loop iterations (src/gpu/loop_budget.ts), a row gathered more often than GATHER_WINDOW times (a padding token in
 * a very large batch) is summed in windows of its positions, one dispatch each, in order.
 */
import { kernel } from "../../gpu/kernel.ts";
import { LOOP_BUDGET, loopLimited } from "../../gpu/loop_budget.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { tensor } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";

const KF = kernel("gather_rows.wgsl");
const KB = kernel("gather_rows_backward.wgsl");

export interface GatherRowsOptions {
  /** Shape of the indices when they are given as an Int32Array (default [N]). */
  shape?: readonly number[];
  /** The host copy of an i32 indices tensor (required with a tensor when the table needs a gradient). */
  host?: Int32Array;
}

/** Positions of one row one backward invocation sums at most on CPU adapters (its loop: GATHER_WINDOW + 1). */
export const GATHER_WINDOW = LOOP_BUDGET - 1;

/**
 * The backward plan for `indices` into a table of V rows: V + 1 offsets, then the N positions grouped by row
 * (positions of one row in increasing order).
 */
export function scatterPlan(indices: Int32Array, V: number): Int32Array {
  const N = indices.length;
  const plan = new Int32Array(V + 1 + N);
  for (let n = 0; n < N; n++) plan[indices[n] + 1]++;
  for (let v = 0; v < V; v++) plan[v + 1] += plan[v];
  const cursor = plan.slice(0, V);
  for (let n = 0; n < N; n++) plan[V + 1 + cursor[indices[n]]++] = n;
  return plan;
}

function checkIndices(host: Int32Array, V: number): void {
  for (let n = 0; n < host.length; n++) {
    const v = host[n];
    if (!(v >= 0 && v < V)) {
      throw new RangeError(
        `gatherRows: index ${v} at position ${n} is out of range for a table of V = ${V} rows`,
      );
    }
  }
}

/** Rows of `table` picked by `indices` (see the module comment for the two ways to pass indices). */
export function gatherRows(
  table: Tensor,
  indices: Int32Array | Tensor,
  opts: GatherRowsOptions = {},
): Tensor {
  table.assertAlive();
  if (table.ndim !== 2) {
    throw new RangeError(`gatherRows: the table must be [V, C], got shape [${table.shape}]`);
  }
  const [V, C] = table.shape;
  let idx: Tensor;
  let host: Int32Array;
  let owned = false;
  if (indices instanceof Int32Array) {
    const shape = opts.shape ?? [indices.length];
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 0 || size !== indices.length) {
      throw new RangeError(
        `gatherRows: ${indices.length} indices do not fill the shape [${shape}] (≥ 1 axis)`,
      );
    }
    host = indices.slice();
    checkIndices(host, V);
    idx = tensor(host, shape, { dtype: "i32" });
    owned = true;
  } else {
    indices.assertAlive();
    if (indices.dtype !== "i32") throw new TypeError(`gatherRows: indices must be i32, got ${indices.dtype}`);
    if (indices.ndim === 0) {
      throw new RangeError("gatherRows: indices need at least one axis, got a 0-d tensor");
    }
    if (!opts.host && needsGrad(table)) {
      throw new TypeError(
        "gatherRows: an indices tensor needs its host copy too ({host: Int32Array}), for validation and the " +
          "backward plan; or pass the Int32Array alone",
      );
    }
    if (opts.host && opts.host.length !== indices.size) {
      throw new RangeError(
        `gatherRows: host copy has ${opts.host.length} indices, the tensor ${indices.size}`,
      );
    }
    // without a host copy (no gradient): indices made on the GPU, in range by construction (argmaxRows)
    host = opts.host ? opts.host.slice() : new Int32Array(0);
    if (opts.host) checkIndices(host, V);
    idx = indices;
  }
  const N = idx.size;
  const out = empty([...idx.shape, C], table.dtype);
  if (out.size > 0) {
    dispatch({
      kernel: KF,
      params: { total: out.size, C },
      buffers: [table.binding, idx.binding, out.binding],
      workgroups: grid1d(out.size, 256),
    });
  }
  if (owned) idx.dispose();
  if (!needsGrad(table)) return out;
  return record("gatherRows", [table], out, (dy) => {
    const dTable = empty([V, C]);
    if (dTable.size === 0) return [dTable];
    const hostPlan = scatterPlan(host, V);
    let most = 0;
    for (let v = 0; v < V; v++) most = Math.max(most, hostPlan[v + 1] - hostPlan[v]);
    const kw = loopLimited() ? GATHER_WINDOW : Math.max(most, 1);
    const plan = tensor(hostPlan, [V + 1 + N], { dtype: "i32" });
    for (let k0 = 0; k0 === 0 || k0 < most; k0 += kw) {
      dispatch({
        kernel: KB,
        params: { total: V * C, C, V, k0, kw, accumulate: k0 > 0 },
        buffers: [dy.binding, plan.binding, dTable.binding],
        workgroups: grid1d(V * C, 256),
      });
    }
    plan.dispose();
    return [dTable];
  });
}
