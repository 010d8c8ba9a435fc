/**
 * Host-side label helpers of the log-prob ops: the ignore index, flattening and validating host labels, uploading
 * them as an i32 tensor, and the causal one-position shift (SPEC "Batches and log-probs").
 *
 * Labels equal to `ignoreIndex` (default -100) score 0 and get no gradient. Labels given as host arrays are
 * validated (a label outside [0, V) that is not `ignoreIndex` throws, naming its position); labels given as an
 * i32 tensor cannot be checked without a readback, so an out-of-range label there yields NaN for that row.
 */
import { tensor } from "../../tensor/create.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/** Hugging Face's `label_pad_token_id` / PyTorch's cross-entropy `ignore_index` default. */
export const IGNORE_INDEX = -100;

/** Labels: an i32 tensor already on the GPU, or host integers (validated, then uploaded). */
export type Labels = Tensor | Int32Array | readonly number[];

/** Host labels: flat, or one array per row. */
export type HostLabels = Int32Array | readonly number[] | readonly (readonly number[])[];

/** Whether labels are host integers (not a tensor). */
export function isHostLabels(x: unknown): x is HostLabels {
  return x instanceof Int32Array || Array.isArray(x);
}

/** Flattens host labels to an Int32Array, checking that each value is an integer. */
export function flattenLabels(labels: HostLabels): Int32Array {
  if (labels instanceof Int32Array) return labels;
  const rows = labels as readonly unknown[];
  const flat = rows.length > 0 && Array.isArray(rows[0])
    ? (rows as readonly (readonly number[])[]).flat()
    : (rows as readonly number[]);
  const out = new Int32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (!Number.isInteger(v)) throw new TypeError(`labels[${i}] is ${v}, expected an integer token id`);
    out[i] = v;
  }
  return out;
}

/** The labels as an i32 tensor of n elements; host labels are validated against [0, V) ∪ {ignore} first. */
export function uploadLabels(what: string, labels: Labels, n: number, V: number, ignore: number): Tensor {
  if (!isHostLabels(labels)) {
    const t = labels as Tensor;
    if (t.dtype !== "i32") throw new TypeError(`${what}: labels must be an i32 tensor, got ${t.dtype}`);
    if (t.size !== n) {
      throw new RangeError(`${what}: expected ${n} labels (one per row), got shape [${t.shape}]`);
    }
    return t;
  }
  const flat = flattenLabels(labels);
  checkLabels(what, flat, n, V, ignore);
  return tensor(flat, [n], { dtype: "i32" });
}

/** Throws unless `flat` holds n labels, each in [0, V) or equal to `ignore` (the error names the position). */
export function checkLabels(what: string, flat: Int32Array, n: number, V: number, ignore: number): void {
  if (flat.length !== n) {
    throw new RangeError(`${what}: expected ${n} labels (one per row), got ${flat.length}`);
  }
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (v !== ignore && (v < 0 || v >= V)) {
      throw new RangeError(
        `${what}: label ${v} at position ${i} is outside the vocabulary [0, ${V}) and is not ignoreIndex ${ignore}`,
      );
    }
  }
}

/** Throws unless `ignore` is a 32-bit integer (it is compared with i32 labels on the GPU). */
export function checkIgnore(ignore: number): void {
  if (!Number.isInteger(ignore) || ignore < -0x80000000 || ignore > 0x7fffffff) {
    throw new RangeError(`ignoreIndex must be a 32-bit integer, got ${ignore}`);
  }
}

/**
 * The causal one-position shift, on host labels [B, T]: out[b, t] = labels[b, t + 1] for t < T − 1 and
 * `ignoreIndex` at t = T − 1. Position t's logits (computed from hidden state t) score the next token, so
 * `fusedLogProbs(h [B·T, C], W, shiftLabels(labels, [B, T]))` gives token log-probs aligned with positions 0..T−1:
 * the first label of each row is never scored and the last position scores nothing, with no copy of h.
 * (Equivalently a caller may pass hidden states of positions 0..T−2 with labels 1..T−1.)
 */
export function shiftLabels(
  labels: HostLabels,
  shape: readonly [number, number],
  ignoreIndex: number = IGNORE_INDEX,
): Int32Array {
  const [B, T] = shape;
  const flat = flattenLabels(labels);
  if (flat.length !== B * T) {
    throw new RangeError(`shiftLabels: ${flat.length} labels do not form the shape [${B}, ${T}]`);
  }
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) out[b * T + t] = flat[b * T + t + 1];
    if (T > 0) out[b * T + T - 1] = ignoreIndex;
  }
  return out;
}
