/**
 * The global L2 norm of the gradients of a list of parameters, and torch.nn.utils.clip_grad_norm_'s clip
 * coefficient, computed on the GPU without a readback.
 *
 * Two passes, deterministic: every gradient (or every binding-sized range of one) is reduced by fixed 4096-
 * element blocks into a small buffer of partial sums of squares (up to 24 gradients a dispatch where the adapter
 * has 25 storage bindings, else one: multi_tensor.ts; the same partials either way), then one workgroup sums the
 * partials in a fixed order, takes the square root and computes min(1, maxNorm / (norm + 1e-6)). The results stay on the GPU as
 * one-element tensors: the norm for logging (`grad_norm`, read back only at logging steps) and the coefficient
 * for the AdamW step, which scales each gradient by it as it reads it.
 *
 * Parameters whose `.grad` is null are skipped, as torch skips them. A NaN anywhere in the gradients makes the
 * norm NaN, an infinity (or an overflowing sum) makes it +Inf: `Number.isFinite(await norm.item())` is the
 * check a trainer makes. torch's coefficient follows from such a norm (NaN, or 0 for +Inf), so an update with it
 * spoils the parameters, as it does in torch.
 *
 * The finishing workgroup's invocations each sum 1/256 of the partials: past about 15M partials (63G elements) that
 * would exceed lavapipe's loop limit (src/gpu/loop_budget.ts), and such a list is refused there.
 */
import { kernel } from "../gpu/kernel.ts";
import { checkLoopBudget } from "../gpu/loop_budget.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import { type BindingLimitOptions, elementRange, rangeElements, splitRanges } from "../gpu/binding.ts";
import { multiTensor, runs, slotCount, slotTable } from "./multi_tensor.ts";

const K = kernel("grad_norm.wgsl");
const K_MULTI = kernel("grad_norm_multi.wgsl");

/** Elements one workgroup of the partial pass reduces (256 invocations × 16). */
export const NORM_BLOCK = 4096;

/** The gradient norm and torch's clip coefficient, both one-element tensors on the GPU. */
export interface ClipResult {
  /** The total L2 norm of the gradients before clipping (torch's return value of clip_grad_norm_). */
  norm: Tensor;
  /** min(1, maxNorm / (norm + 1e-6)): the factor every gradient is multiplied by. */
  coef: Tensor;
}

export type GradNormOptions = BindingLimitOptions;

export interface ClipGradNormOptions extends BindingLimitOptions {
  /**
   * Also multiply every `.grad` by the coefficient in place, as torch's clip_grad_norm_ does (default false:
   * pass `coef` to `AdamW.step({ gradScale })` instead, which scales while it reads and saves a pass).
   */
  inPlace?: boolean;
}

function gradsOf(params: Iterable<Tensor>): Tensor[] {
  const out: Tensor[] = [];
  for (const p of params) {
    if (!p.grad) continue;
    if (p.grad.size !== p.size) {
      throw new RangeError(`gradient of shape [${p.grad.shape}] does not match its parameter [${p.shape}]`);
    }
    if (p.grad.dtype !== "f32") throw new TypeError(`gradients must be f32, got ${p.grad.dtype}`);
    if (p.grad.size > 0) out.push(p.grad);
  }
  return out;
}

/** A range of one gradient and the index of its first partial sum. */
interface Job {
  g: Tensor;
  start: number;
  count: number;
  slot: number;
}

/** Pass one: partial sums of squares of every gradient block into a new tensor. */
function partialSums(grads: Tensor[], opts: BindingLimitOptions): Tensor {
  const per = rangeElements(opts);
  const jobs: Job[] = [];
  let slots = 0;
  for (const g of grads) {
    for (const r of splitRanges(g.size, per)) {
      jobs.push({ g, ...r, slot: slots });
      slots += Math.ceil(r.count / NORM_BLOCK);
    }
  }
  // the finishing pass: a strided loop over the partials, then a tree of 8 steps
  checkLoopBudget(
    `gradient norm over ${slots} blocks of ${NORM_BLOCK}`,
    Math.ceil(slots / 256) + 1 + 9,
    "clip the gradients of fewer parameters at a time",
  );
  const partials = empty([slots]);
  if (multiTensor()) {
    partialsMulti(jobs, partials);
    return partials;
  }
  for (const j of jobs) {
    dispatch({
      kernel: K,
      entry: "partial",
      params: { n: j.count, slot: j.slot },
      buffers: [elementRange(j.g.binding, j), partials.binding],
      workgroups: grid1d(j.count, NORM_BLOCK),
    });
  }
  return partials;
}

/** Pass one over up to SLOTS gradient ranges a dispatch (grad_norm_multi.wgsl): the same partials, in order. */
function partialsMulti(jobs: Job[], partials: Tensor): void {
  const slots = slotCount(K_MULTI, 1, 1);
  for (const run of runs(jobs, slots, () => true)) {
    const table = slotTable(run.map((j) => j.count), NORM_BLOCK, slots);
    const x = run.map((j) => elementRange(j.g.binding, j));
    // unused slots read the first range again (never read: their element count is 0)
    while (x.length < slots) x.push(x[0]);
    dispatch({
      kernel: K_MULTI,
      params: { slot: run[0].slot, ends: table.ends, ns: table.ns },
      buffers: [partials.binding, ...x],
      workgroups: grid1d(table.groups * NORM_BLOCK, NORM_BLOCK),
    });
  }
}

function checkMaxNorm(maxNorm: number): void {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new RangeError(`maxNorm must be a finite number > 0, got ${maxNorm}`);
  }
}

/** The total L2 norm of the parameters' gradients, as a one-element tensor (0 when no parameter has one). */
export function gradNorm(params: Iterable<Tensor>, opts: GradNormOptions = {}): Tensor {
  const partials = partialSums(gradsOf(params), opts);
  const norm = empty([1]);
  dispatch({
    kernel: K,
    entry: "finish_norm",
    params: { n: partials.size },
    buffers: [partials.binding, norm.binding],
    workgroups: [1],
  });
  partials.dispose();
  return norm;
}

/**
 * torch.nn.utils.clip_grad_norm_(params, maxNorm) on the GPU: the total norm of the gradients and the
 * coefficient min(1, maxNorm / (norm + 1e-6)). Without `inPlace` the gradients are left as they are and the
 * coefficient is meant for `AdamW.step({ gradScale: coef })`.
 */
export function clipGradNorm(
  params: Iterable<Tensor>,
  maxNorm: number,
  opts: ClipGradNormOptions = {},
): ClipResult {
  checkMaxNorm(maxNorm);
  const list = [...params];
  const grads = gradsOf(list);
  const partials = partialSums(grads, opts);
  const norm = empty([1]);
  const coef = empty([1]);
  dispatch({
    kernel: K,
    entry: "finish",
    params: { n: partials.size, max_norm: maxNorm },
    buffers: [partials.binding, norm.binding, coef.binding],
    workgroups: [1],
  });
  partials.dispose();
  if (opts.inPlace) scaleGrads(list, coef, opts);
  return { norm, coef };
}

/** Multiplies every parameter's `.grad` in place by the one-element tensor `coef` (read on the GPU). */
export function scaleGrads(params: Iterable<Tensor>, coef: Tensor, opts: BindingLimitOptions = {}): void {
  if (coef.size !== 1) {
    throw new RangeError(`the scale must be a one-element tensor, got shape [${coef.shape}]`);
  }
  const per = rangeElements(opts);
  for (const g of gradsOf(params)) {
    for (const r of splitRanges(g.size, per)) {
      dispatch({
        kernel: K,
        entry: "scale_grads",
        params: { n: r.count },
        buffers: [coef.binding, elementRange(g.binding, r)],
        workgroups: grid1d(r.count, 256),
      });
    }
  }
}
