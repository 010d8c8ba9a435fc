/**
 * A plain float64 reference of one DPO optimizer step on a whole model (tests only), composed from the references
 * in this folder: the transformer forward/backward (transformer.ts), the SPEC's sequence log-probs and their
 * logits gradient (src/autograd/ops/fused_logprobs.ts), the DPO-family losses and metrics (src/dpo/loss_op.ts) and torch's AdamW with
 * clip_grad_norm_ (adamw.ts). It shares no code with src/.
 *
 * `referenceDpoFromLogits` is the part from logits on (checked against the golden `batch` cases);
 * `referenceDpoStep` runs the policy (and reference) models, that part, the backward and the optimizer step.
 *
 * Supported: every loss type of src/dpo/loss_op.ts (a string or a list, with `lossWeights`), `labelSmoothing`,
 * f-divergences, RPO (`rpoAlpha`, and `sft` in a loss list), reference-free (no reference model). Not offered:
 * WPO (`use_weighting`), LD-DPO (`ld_alpha`), precomputed reference log-probs. bco_pair uses a fresh running mean
 * (its first training step).
 */
import {
  type IdRows,
  referenceForward,
  referenceForwardBackward,
  type RefModelConfig,
  type RefParams,
} from "./transformer.ts";
import { refCausalSequenceLogps, refLogSoftmaxGatherBackward } from "./logprobs.ts";
import { type RefConfig, refDpoGrad, refDpoLoss } from "./dpo_loss.ts";
import { clipCoef, globalNorm, RefAdamW } from "./adamw.ts";

export interface RefDpoOptions {
  beta: number;
  /** A loss type or a list (default "sigmoid"); "aot_unpaired" is "aot_pair". */
  lossType?: string | string[];
  lossWeights?: number[];
  labelSmoothing?: number;
  rpoAlpha?: number | null;
  fDivergenceType?: RefConfig["fDivergenceType"];
  fAlphaDivergenceCoef?: number;
  discopopTau?: number;
  /** Default −100. */
  labelPadTokenId?: number;
}

export interface RefDpoMetrics {
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/accuracies": number;
  "rewards/margins": number;
  "logps/chosen": number;
  "logps/rejected": number;
  "logits/chosen": number;
  "logits/rejected": number;
  /** With rpoAlpha, or `sft` in the loss list. */
  nll_loss?: number;
}

export interface RefDpoFromLogits {
  loss: number;
  /** Per-example losses (2B for kto_pair alone). */
  losses: number[];
  chosenRewards: number[];
  rejectedRewards: number[];
  metrics: RefDpoMetrics;
  policyChosenLogps: number[];
  policyRejectedLogps: number[];
  /** Zeros when reference-free. */
  referenceChosenLogps: number[];
  referenceRejectedLogps: number[];
  chosenTokenCounts: number[];
  rejectedTokenCounts: number[];
  /** d loss / d policy logits, [2B, T, V]. */
  gradPolicyLogits: Float64Array;
}

/** The SPEC's sequence log-probs of logits [R, T, V] with labels [R, T], and the scored-token counts. */
function sequenceLogps(
  z: ArrayLike<number>,
  labels: Int32Array,
  R: number,
  T: number,
  V: number,
  ignore: number,
) {
  const logps = refCausalSequenceLogps(z, labels, R, T, V, ignore);
  const counts: number[] = [];
  for (let r = 0; r < R; r++) {
    let n = 0;
    for (let t = 1; t < T; t++) if (labels[r * T + t] !== ignore) n++;
    if (n === 0) throw new RangeError(`reference: sequence ${r} has no scored label`);
    counts.push(n);
  }
  return { logps: Array.from(logps), counts };
}

/**
 * From policy logits [2B, T, V] (rows [0, B) chosen, [B, 2B) rejected), reference logits of the same shape (null:
 * reference-free) and labels [2B][T]: sequence log-probs (Σ over t ≥ 1 with labels[t] ≠ pad of
 * log softmax(logits[t − 1])[labels[t]]), the loss, rewards, SPEC metrics, and d loss / d policy logits.
 */
export function referenceDpoFromLogits(args: {
  policyLogits: ArrayLike<number>;
  referenceLogits: ArrayLike<number> | null;
  labels: IdRows;
  vocabSize: number;
  dpo: RefDpoOptions;
}): RefDpoFromLogits {
  const { policyLogits: z, referenceLogits, dpo } = args;
  const V = args.vocabSize;
  const R = args.labels.length;
  const T = args.labels[0]?.length ?? 0;
  if (R === 0 || R % 2 !== 0) {
    throw new RangeError(`reference: a [chosen; rejected] batch needs 2B rows, got ${R}`);
  }
  if (z.length !== R * T * V) {
    throw new RangeError(`reference: policy logits have ${z.length} values, not ${R}·${T}·${V}`);
  }
  if (referenceLogits && referenceLogits.length !== z.length) {
    throw new RangeError(
      `reference: reference logits have ${referenceLogits.length} values, not ${z.length}`,
    );
  }
  const B = R / 2;
  const ignore = dpo.labelPadTokenId ?? -100;
  const labels = Int32Array.from(args.labels.flat());
  const types = (Array.isArray(dpo.lossType) ? dpo.lossType : [dpo.lossType ?? "sigmoid"]).map((t) =>
    t === "aot_unpaired" ? "aot_pair" : t
  );

  const pol = sequenceLogps(z, labels, R, T, V, ignore);
  const ref = referenceLogits ? sequenceLogps(referenceLogits, labels, R, T, V, ignore) : null;
  const pc = pol.logps.slice(0, B), pr = pol.logps.slice(B);
  const lc = pol.counts.slice(0, B), lr = pol.counts.slice(B);
  // RPO / sft: token-mean cross-entropy over the chosen completion tokens = −Σ pc / Σ len_c
  const chosenTokens = lc.reduce((a, b) => a + b, 0);
  const withNll = (dpo.rpoAlpha !== null && dpo.rpoAlpha !== undefined) || types.includes("sft");
  const nll = -pc.reduce((a, b) => a + b, 0) / chosenTokens;

  const cfg: RefConfig = {
    beta: dpo.beta,
    lossTypes: types,
    lossWeights: dpo.lossWeights,
    labelSmoothing: dpo.labelSmoothing ?? 0,
    fDivergenceType: dpo.fDivergenceType,
    fAlphaDivergenceCoef: dpo.fAlphaDivergenceCoef,
    discopopTau: dpo.discopopTau,
    rpoAlpha: dpo.rpoAlpha ?? null,
  };
  const inputs = {
    pc,
    pr,
    rc: ref ? ref.logps.slice(0, B) : undefined,
    rr: ref ? ref.logps.slice(B) : undefined,
    lc,
    lr,
    nll: withNll ? nll : 0,
  };
  const out = refDpoLoss(inputs, cfg);
  const grad = refDpoGrad(inputs, cfg);

  // d loss / d sequence log-prob of each row, then through log softmax at the shifted labels
  const dSeq = [...grad.pc.map((g) => g - grad.nll / chosenTokens), ...grad.pr];
  const shifted = new Int32Array(R * T).fill(ignore);
  const dRow = new Float64Array(R * T);
  for (let r = 0; r < R; r++) {
    for (let t = 0; t + 1 < T; t++) {
      shifted[r * T + t] = labels[r * T + t + 1];
      dRow[r * T + t] = dSeq[r];
    }
  }
  const gradPolicyLogits = refLogSoftmaxGatherBackward(z, shifted, dRow, R * T, V, ignore);

  // logits/chosen, logits/rejected: mean over the scored positions of the half of the vocabulary-mean logit
  const logitMean = (rows: [number, number]) => {
    let s = 0, n = 0;
    for (let r = rows[0]; r < rows[1]; r++) {
      for (let t = 0; t + 1 < T; t++) {
        if (shifted[r * T + t] === ignore) continue;
        let m = 0;
        for (let v = 0; v < V; v++) m += z[(r * T + t) * V + v];
        s += m / V;
        n++;
      }
    }
    return s / n;
  };
  const metrics: RefDpoMetrics = {
    ...out.metrics,
    "logits/chosen": logitMean([0, B]),
    "logits/rejected": logitMean([B, R]),
  };
  if (withNll) metrics.nll_loss = nll;
  return {
    loss: out.loss,
    losses: out.losses,
    chosenRewards: out.chosenRewards,
    rejectedRewards: out.rejectedRewards,
    metrics,
    policyChosenLogps: pc,
    policyRejectedLogps: pr,
    referenceChosenLogps: inputs.rc ?? new Array(B).fill(0),
    referenceRejectedLogps: inputs.rr ?? new Array(B).fill(0),
    chosenTokenCounts: lc,
    rejectedTokenCounts: lr,
    gradPolicyLogits,
  };
}

/** One collated micro-batch: [chosen; rejected] rows, 2B × T. */
export interface RefDpoBatch {
  inputIds: IdRows;
  attentionMask: IdRows;
  labels: IdRows;
}

export interface RefAdamWOptions {
  lr: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0; applied to the parameters `noDecay` does not exempt. */
  weightDecay?: number;
  /** clip_grad_norm_ bound; null or ≤ 0: no clipping. Default 1 (TrainingArguments.max_grad_norm). */
  maxGradNorm?: number | null;
  /** Which parameters get no weight decay (default `hfNoDecay`). */
  noDecay?: (name: string) => boolean;
}

/**
 * Hugging Face Trainer's weight-decay exemptions, by state-dict name: biases and the weights of normalisation
 * layers (Llama's input_layernorm / post_attention_layernorm / model.norm, GPT-2's ln_1 / ln_2 / ln_f).
 */
export function hfNoDecay(name: string): boolean {
  const parts = name.split(".");
  const leaf = parts[parts.length - 1];
  const module = parts[parts.length - 2] ?? "";
  return leaf === "bias" || /norm$/.test(module) || /^ln_(\d+|f)$/.test(module);
}

export interface RefDpoStepResult {
  /** The step's loss: the mean of the micro-batch losses. */
  loss: number;
  /** Mean over the micro-batches of each metric. */
  metrics: RefDpoMetrics;
  /** ‖g‖₂ of the accumulated gradient, before clipping. */
  gradNorm: number;
  /** The clip_grad_norm_ factor applied (1 without clipping). */
  clipCoef: number;
  /** The accumulated gradients (Σ over micro-batches of d loss_k / d p, divided by their number), unclipped. */
  grads: Map<string, Float64Array>;
  updatedParams: Map<string, Float64Array>;
  /** Each micro-batch's own results (log-probs, rewards, losses, logits gradient). */
  microBatches: RefDpoFromLogits[];
}

/**
 * One optimizer step of DPO: for each micro-batch (one, or a list for gradient accumulation) a policy forward over
 * the [chosen; rejected] rows, a reference forward (none when `refParams` is null: reference-free), the loss of
 * `referenceDpoFromLogits`, and the backward of loss / (number of micro-batches); then the global gradient norm,
 * clip_grad_norm_ and one torch AdamW step (state starting at zero, step 1).
 */
export function referenceDpoStep(args: {
  config: RefModelConfig;
  policyParams: RefParams;
  refParams: RefParams | null;
  batch: RefDpoBatch | RefDpoBatch[];
  dpo: RefDpoOptions;
  adamw: RefAdamWOptions;
}): RefDpoStepResult {
  const { config, policyParams, refParams, dpo, adamw } = args;
  const batches = Array.isArray(args.batch) ? args.batch : [args.batch];
  if (batches.length === 0) throw new RangeError("reference: no micro-batch");
  const K = batches.length;
  const grads = new Map<string, Float64Array>();
  const micro: RefDpoFromLogits[] = [];
  for (const mb of batches) {
    const fb = referenceForwardBackward(config, policyParams, mb.inputIds, mb.attentionMask);
    const refLogits = refParams ? referenceForward(config, refParams, mb.inputIds, mb.attentionMask) : null;
    const r = referenceDpoFromLogits({
      policyLogits: fb.logits,
      referenceLogits: refLogits,
      labels: mb.labels,
      vocabSize: config.vocabSize,
      dpo,
    });
    micro.push(r);
    const g = fb.backward(r.gradPolicyLogits.map((v) => v / K));
    for (const [name, gi] of g) {
      const acc = grads.get(name);
      if (!acc) grads.set(name, gi);
      else for (let i = 0; i < acc.length; i++) acc[i] += gi[i];
    }
  }

  const mean = (f: (r: RefDpoFromLogits) => number) => micro.reduce((s, r) => s + f(r), 0) / K;
  const metrics = {} as RefDpoMetrics;
  for (const key of Object.keys(micro[0].metrics) as (keyof RefDpoMetrics)[]) {
    metrics[key] = mean((r) => r.metrics[key]!);
  }

  const gradNorm = globalNorm([...grads.values()]);
  const maxNorm = adamw.maxGradNorm === undefined ? 1 : adamw.maxGradNorm;
  const coef = maxNorm !== null && maxNorm > 0 ? clipCoef(gradNorm, maxNorm) : 1;
  const noDecay = adamw.noDecay ?? hfNoDecay;
  const updatedParams = new Map<string, Float64Array>();
  for (const [name, p] of policyParams) {
    const g = grads.get(name);
    if (!g) {
      updatedParams.set(name, Float64Array.from(p)); // not a parameter of this config
      continue;
    }
    const opt = new RefAdamW(p);
    opt.step(g, {
      lr: adamw.lr,
      betas: adamw.betas ?? [0.9, 0.999],
      eps: adamw.eps ?? 1e-8,
      weightDecay: noDecay(name) ? 0 : adamw.weightDecay ?? 0,
      scale: coef,
    });
    updatedParams.set(name, opt.p);
  }
  return {
    loss: mean((r) => r.loss),
    metrics,
    gradNorm,
    clipCoef: coef,
    grads,
    updatedParams,
    microBatches: micro,
  };
}
