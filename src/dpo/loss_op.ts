/**
 * dpoLossOp: every DPO-family loss of SPEC.md on per-sequence log-probs, forward and backward, one workgroup per
 * call (kernels/dpo_loss.wgsl). The inputs are packed by buffer copies into one scratch tensor (log-probs, token
 * counts, WPO weights, the nll scalar), so the kernel stays within 8 storage bindings whatever is given; the
 * backward kernel recomputes what it needs from that tensor and writes its gradients there, to be copied out.
 *
 * Two outputs carry gradients: `loss` (Σₖ wₖ·mean(lossₖ) + rpo·nll) and `losses` (per entry, mean(losses) =
 * loss − rpo·nll), both to the policy log-probs and the nll scalar; reference log-probs, token counts, WPO weights
 * and the bco_pair running mean are constants. Rewards, per-type losses and statistics are detached.
 *
 * This is the raw op: the caller (src/dpo/loss.ts) validates the configuration and maps names.
 *
 * aot and aot_pair rank the batch in a dispatch of their own, one invocation per pair (lavapipe stops an invocation
 * after about 65 535 loop iterations in all: one workgroup ranking every pair stopped past ~4,100 pairs); beyond
 * what one invocation may loop (`dpoLossIterations`) a loop-limited adapter refuses the batch with a GpuLimitError.
 */
import { kernel } from "../gpu/kernel.ts";
import { checkLoopBudget } from "../gpu/loop_budget.ts";
import type { ParamValues } from "../gpu/params.ts";
import { clearBuffer, copyBuffer, dispatch, grid1d } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import { needsGrad, record } from "../autograd/record.ts";

const K = kernel("dpo_loss.wgsl");

/** Loss types in kernel id order (bit t of the kernel's TYPES mask). */
export const DPO_LOSS_TYPES = [
  "sigmoid",
  "robust",
  "hinge",
  "ipo",
  "exo_pair",
  "kto_pair",
  "bco_pair",
  "sppo_hard",
  "nca_pair",
  "aot",
  "aot_pair",
  "apo_zero",
  "apo_down",
  "discopop",
  "sigmoid_norm",
  "sft",
] as const;
export type DpoLossType = typeof DPO_LOSS_TYPES[number];

export const F_DIVERGENCE_TYPES = ["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"] as const;
export type FDivergenceType = typeof F_DIVERGENCE_TYPES[number];

/** What each element of the `stats` output holds. */
export const DPO_LOSS_STATS = [
  "rewards/chosen",
  "rewards/rejected",
  "rewards/accuracies",
  "rewards/margins",
  "logps/chosen",
  "logps/rejected",
  "bco/batch_reward_mean",
  "bco/running_mean",
] as const;

/** A resolved, validated loss configuration. */
export interface DpoLossSpec {
  /** Distinct loss types. */
  types: readonly DpoLossType[];
  /** One weight per type. */
  weights: readonly number[];
  beta: number;
  labelSmoothing: number;
  fDivergenceType: FDivergenceType;
  fAlphaDivergenceCoef: number;
  discopopTau: number;
  /** 0 when RPO is off. */
  rpoAlpha: number;
  /** Multiply each pair's losses by `weights` (WPO). */
  useWeighting: boolean;
  /** bco_pair: update the running mean (training micro-batches) before using it. */
  training: boolean;
}

export interface DpoLossTensors {
  policyChosen: Tensor;
  policyRejected: Tensor;
  /** Absent: reference-free (0). */
  referenceChosen?: Tensor;
  referenceRejected?: Tensor;
  /** Completion token counts, f32 or i32 (ipo, sigmoid_norm). */
  chosenLengths?: Tensor;
  rejectedLengths?: Tensor;
  /** WPO pair weights [B]. */
  weights?: Tensor;
  /** The token-mean cross-entropy of the chosen completions (sft, rpo), one element. */
  nll?: Tensor;
  /** bco_pair state [running mean, update count], updated in place by training calls. */
  bcoState?: Tensor;
}

export interface DpoLossOpResult {
  /** [B], or [2B] when kto_pair is the only type. */
  losses: Tensor;
  /** Scalar (shape []). */
  loss: Tensor;
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
  /** [8], see DPO_LOSS_STATS. */
  stats: Tensor;
  /** Each type's entries (WPO-weighted, not loss-weighted), in `DPO_LOSS_TYPES` order of the active types. */
  byType: Tensor;
  /** Offset and length of each active type's entries in `byType`. */
  byTypeSlices: Map<DpoLossType, { offset: number; length: number }>;
}

// scratch tensor regions (units of B floats), as in kernels/dpo_loss.wgsl
const R_PC = 0, R_PR = 1, R_RC = 2, R_RR = 3, R_LC = 4, R_LR = 5, R_W = 6;
const R_GC = 15, R_GR = 16, R_DY = 17, R_END = 19;
const FDIV: Record<FDivergenceType, number> = {
  reverse_kl: 0,
  forward_kl: 1,
  js_divergence: 2,
  alpha_divergence: 3,
};

function checkVector(name: string, t: Tensor | undefined, B: number, int = false): void {
  if (!t) return;
  t.assertAlive();
  if (t.ndim !== 1 || t.shape[0] !== B) {
    throw new RangeError(`dpoLoss: ${name} must have shape [${B}] (one value per pair), got [${t.shape}]`);
  }
  if (t.dtype !== "f32" && !(int && t.dtype === "i32")) {
    throw new TypeError(`dpoLoss: ${name} must be ${int ? "f32 or i32" : "f32"}, got ${t.dtype}`);
  }
}

function entryCount(t: DpoLossType, B: number): number {
  return t === "kto_pair" ? 2 * B : B;
}

function params(spec: DpoLossSpec, B: number, dyLen: number): ParamValues {
  const w = new Array(16).fill(0);
  spec.types.forEach((t, k) => (w[DPO_LOSS_TYPES.indexOf(t)] = spec.weights[k]));
  return {
    w,
    B,
    train: spec.training,
    dy_len: dyLen,
    beta: spec.beta,
    eps: spec.labelSmoothing,
    alpha: spec.fAlphaDivergenceCoef,
    tau: spec.discopopTau,
    rpo: spec.rpoAlpha,
  };
}

/**
 * The most loop iterations one invocation of kernels/dpo_loss.wgsl runs for B pairs, counted as if nothing were
 * unrolled (a loop of n trips costs n + 1): forward's strided loops over the pairs with, per pair, the loop over
 * the 16 type ids and each active type's offset loop (t + 1 for type id t), its four tree sums; and sort's two
 * loops over the pairs when both aot types are active. Backward runs fewer than forward.
 */
export function dpoLossIterations(types: readonly DpoLossType[], B: number): number {
  const strided = Math.ceil(B / 256) + 1;
  let offsets = 0;
  for (const t of types) offsets += DPO_LOSS_TYPES.indexOf(t) + 1;
  const forward = strided * (18 + offsets) + 4 * 9;
  const sorts = types.filter((t) => t === "aot" || t === "aot_pair").length;
  return Math.max(forward, sorts === 0 ? 0 : 3 + sorts * (B + 1));
}

function copyInto(dst: Tensor, dstFloat: number, src: Tensor): void {
  if (src.size > 0) copyBuffer(src.storage.buffer, 0, dst.storage.buffer, dstFloat * 4, src.bytes);
}

export function dpoLossOp(x: DpoLossTensors, spec: DpoLossSpec): DpoLossOpResult {
  const pc = x.policyChosen;
  if (pc.ndim !== 1) throw new RangeError(`dpoLoss: policy chosen log-probs must be [B], got [${pc.shape}]`);
  const B = pc.shape[0];
  if (B === 0) throw new RangeError("dpoLoss: the batch is empty (B = 0); the losses need at least one pair");
  checkVector("policy chosen log-probs", pc, B);
  checkVector("policy rejected log-probs", x.policyRejected, B);
  checkVector("reference chosen log-probs", x.referenceChosen, B);
  checkVector("reference rejected log-probs", x.referenceRejected, B);
  checkVector("chosen lengths", x.chosenLengths, B, true);
  checkVector("rejected lengths", x.rejectedLengths, B, true);
  checkVector("WPO weights", x.weights, B);
  if (x.nll && (x.nll.size !== 1 || x.nll.dtype !== "f32")) {
    throw new RangeError(`dpoLoss: nll must be one f32 value, got ${x.nll.dtype} [${x.nll.shape}]`);
  }
  if (x.bcoState && (x.bcoState.size !== 2 || x.bcoState.dtype !== "f32")) {
    throw new RangeError(`dpoLoss: the bco_pair state must be 2 f32 values, got [${x.bcoState.shape}]`);
  }
  if (!x.referenceChosen !== !x.referenceRejected) {
    throw new Error(
      "dpoLoss: give both reference chosen and rejected log-probs, or neither (reference-free)",
    );
  }
  checkLoopBudget(
    `dpoLoss (${spec.types.join(", ")}) on ${B} pairs`,
    dpoLossIterations(spec.types, B),
    "compute the loss on fewer pairs per call (a smaller batch size)",
  );

  let mask = 0;
  for (const t of spec.types) mask |= 1 << DPO_LOSS_TYPES.indexOf(t);
  const constants = {
    TYPES: mask,
    FDIV: spec.fDivergenceType === "alpha_divergence" && Math.abs(spec.fAlphaDivergenceCoef - 1) < 1e-6
      ? 0
      : FDIV[spec.fDivergenceType],
    WEIGHTED: spec.useWeighting ? 1 : 0,
    LEN_I32: (x.chosenLengths?.dtype === "i32" ? 1 : 0) | (x.rejectedLengths?.dtype === "i32" ? 2 : 0),
  };

  // pack the inputs
  const nllAt = R_END * B;
  const scratch = empty([nllAt + 3]);
  clearBuffer(scratch.storage.buffer, 0, scratch.bytes);
  copyInto(scratch, R_PC * B, pc);
  copyInto(scratch, R_PR * B, x.policyRejected);
  if (x.referenceChosen) copyInto(scratch, R_RC * B, x.referenceChosen);
  if (x.referenceRejected) copyInto(scratch, R_RR * B, x.referenceRejected);
  if (x.chosenLengths) copyInto(scratch, R_LC * B, x.chosenLengths);
  if (x.rejectedLengths) copyInto(scratch, R_LR * B, x.rejectedLengths);
  if (x.weights) copyInto(scratch, R_W * B, x.weights);
  if (x.nll) copyInto(scratch, nllAt, x.nll);

  const byTypeSlices = new Map<DpoLossType, { offset: number; length: number }>();
  let total = 0;
  for (const t of DPO_LOSS_TYPES) {
    if (!spec.types.includes(t)) continue;
    byTypeSlices.set(t, { offset: total, length: entryCount(t, B) });
    total += entryCount(t, B);
  }
  const singleKto = spec.types.length === 1 && spec.types[0] === "kto_pair";
  const nLosses = singleKto ? 2 * B : B;
  const stats = empty([DPO_LOSS_STATS.length]);
  const ownState = x.bcoState ? null : empty([2]);
  if (ownState) clearBuffer(ownState.storage.buffer, 0, ownState.bytes);
  const byType = empty([total]);
  const lossesRaw = empty([nLosses]);
  const lossRaw = empty([]);
  const chosenRewards = empty([B]);
  const rejectedRewards = empty([B]);
  if (spec.types.includes("aot") || spec.types.includes("aot_pair")) {
    // ranks and sorted values into the scratch, for forward and (left there) backward
    dispatch({
      kernel: K,
      entry: "sort",
      constants,
      params: params(spec, B, 0),
      buffers: [scratch.binding],
      workgroups: grid1d(B, 64),
    });
  }
  dispatch({
    kernel: K,
    entry: "forward",
    constants,
    params: params(spec, B, 0),
    buffers: [
      scratch.binding,
      stats.binding,
      (x.bcoState ?? ownState!).binding,
      byType.binding,
      lossesRaw.binding,
      lossRaw.binding,
      chosenRewards.binding,
      rejectedRewards.binding,
    ],
    workgroups: [1],
  });
  ownState?.dispose();

  const inputs = [pc, x.policyRejected, ...(x.nll ? [x.nll] : [])];
  if (!needsGrad(...inputs)) {
    scratch.dispose();
    return { losses: lossesRaw, loss: lossRaw, chosenRewards, rejectedRewards, stats, byType, byTypeSlices };
  }
  // d/d(pc, pr, nll) for an upstream gradient dy of `loss` (dyLen 0) or of `losses` (dyLen = its length)
  const backward = (dy: Tensor, dyLen: number): (Tensor | null)[] => {
    copyInto(scratch, R_DY * B, dy);
    dispatch({
      kernel: K,
      entry: "backward",
      constants,
      params: params(spec, B, dyLen),
      buffers: [scratch.binding],
      workgroups: [1],
    });
    const dpc = empty([B]);
    const dpr = empty([B]);
    copyBuffer(scratch.storage.buffer, R_GC * B * 4, dpc.storage.buffer, 0, B * 4);
    copyBuffer(scratch.storage.buffer, R_GR * B * 4, dpr.storage.buffer, 0, B * 4);
    const out: (Tensor | null)[] = [dpc, dpr];
    if (x.nll) {
      const dnll = empty(x.nll.shape);
      copyBuffer(scratch.storage.buffer, (nllAt + 1) * 4, dnll.storage.buffer, 0, 4);
      out.push(dnll);
    }
    return out;
  };
  const loss = record("dpo_loss", inputs, lossRaw, (dy) => backward(dy, 0));
  const losses = record("dpo_losses", inputs, lossesRaw, (dy) => backward(dy, nLosses));
  return { losses, loss, chosenRewards, rejectedRewards, stats, byType, byTypeSlices };
}
