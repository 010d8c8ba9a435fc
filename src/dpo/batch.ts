/**
 * From per-token log-probs of a [chosen; rejected] batch to what the loss and the metrics need (SPEC "Batches and
 * log-probs", "Knobs", "Metrics"): per-sequence log-probs (LD-DPO tail weights applied), scored-token counts,
 * RPO/sft's token-mean NLL over chosen completions, WPO pair weights, and the pooled vocabulary-mean logits.
 * The trainer feeds it from the fused LM-head kernel; tests feed it from explicit logits. Nothing is read back.
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { exp, sub } from "../autograd/ops/mod.ts";
import { mul } from "../autograd/ops/binary.ts";
import { slice } from "../autograd/ops/slice.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { weightedRowSum } from "../autograd/ops/weighted_row_sum.ts";
import { ldWeights, rowScaled, scoredWeights } from "./token_weights.ts";

/** Per-token values of a [2B, T] batch, aligned with the shifted labels (position t scores label t + 1). */
export interface TokenValues {
  /** [2B·T] log p(label), 0 where unscored. Differentiable for the policy. */
  tokenLogps: Tensor;
  /** [2B·T] Σ_v logit (no gradient); needed for the logits/* metrics. */
  logitSum?: Tensor;
  /** [2B·T] log Σ_v p² (no gradient); needed for WPO. */
  logSumP2?: Tensor;
}

export interface PairLogpsOptions {
  /** Pairs B (rows 0..B−1 chosen, B..2B−1 rejected). */
  B: number;
  /** Padded length T. */
  T: number;
  /** Vocabulary size (for the vocabulary-mean logit). */
  V: number;
  /** The shifted labels [2B·T] on the host. */
  shifted: Int32Array;
  ignoreIndex?: number;
  /** LD-DPO's α (null/undefined: off). */
  ldAlpha?: number | null;
  /** Compute WPO pair weights. */
  useWeighting?: boolean;
  /** Compute the token-mean NLL of the chosen completions (RPO, sft). */
  needNll?: boolean;
  /** Compute the pooled vocabulary-mean logits (metrics). */
  needLogits?: boolean;
}

export interface PairLogps {
  /** [B] Σ log-probs of the chosen / rejected completions (LD-weighted). */
  chosen: Tensor;
  rejected: Tensor;
  /** Scored tokens per row [2B] (raw, without LD weighting). */
  counts: Int32Array;
  /** [B] token counts as f32 tensors (for ipo / sigmoid_norm). */
  chosenLengths: Tensor;
  rejectedLengths: Tensor;
  /** One value: −(Σ chosen token log-probs) / (number of chosen tokens). */
  nll: Tensor | null;
  /** [B] w_c·w_r, no gradient. */
  wpoWeights: Tensor | null;
  /** [2B] per-sequence WPO weights w (no gradient). */
  wpoSequenceWeights: Tensor | null;
  /** One value each: the mean over scored positions of the chosen (rejected) rows of the vocabulary-mean logit. */
  logitsChosen: Tensor | null;
  logitsRejected: Tensor | null;
}

/** Per-sequence log-probs and the loss inputs for one [chosen; rejected] batch. */
export function pairLogps(v: TokenValues, o: PairLogpsOptions): PairLogps {
  const { B, T } = o;
  const rows = 2 * B;
  const ignore = o.ignoreIndex ?? -100;
  const { weights, counts } = scoredWeights(o.shifted, rows, T, ignore);
  const seqWeights = o.ldAlpha === null || o.ldAlpha === undefined
    ? weights
    : ldWeights(weights, counts, B, T, o.ldAlpha);
  const w = tensor(seqWeights, [rows * T]);
  const seq = weightedRowSum(v.tokenLogps, w, rows, T);
  const chosen = slice(seq, 0, B);
  const rejected = slice(seq, B, rows);
  const chosenLengths = tensor(Float32Array.from(counts.subarray(0, B)), [B]);
  const rejectedLengths = tensor(Float32Array.from(counts.subarray(B)), [B]);
  let nChosen = 0;
  for (let i = 0; i < B; i++) nChosen += counts[i];

  let nll: Tensor | null = null;
  if (o.needNll) {
    const nw = rowScaled(weights, rows, T, (r) => (r < B ? -1 / nChosen : 0));
    nll = weightedRowSum(v.tokenLogps, nw, 1, rows * T);
  }
  let wpoWeights: Tensor | null = null;
  let wpoSequenceWeights: Tensor | null = null;
  if (o.useWeighting) {
    if (!v.logSumP2) throw new Error("pairLogps: WPO weighting needs the per-token log Σ p² values");
    noGrad(() => {
      const mw = rowScaled(weights, rows, T, (r) => 1 / counts[r]);
      const means = weightedRowSum(sub(v.tokenLogps, v.logSumP2!), mw, rows, 1 * T);
      wpoSequenceWeights = exp(means);
      wpoWeights = mul(slice(wpoSequenceWeights, 0, B), slice(wpoSequenceWeights, B, rows));
    });
  }
  let logitsChosen: Tensor | null = null;
  let logitsRejected: Tensor | null = null;
  if (o.needLogits) {
    if (!v.logitSum) throw new Error("pairLogps: the logits metrics need the per-token logit sums");
    let nRejected = 0;
    for (let i = B; i < rows; i++) nRejected += counts[i];
    noGrad(() => {
      const cw = rowScaled(weights, rows, T, (r) => (r < B ? 1 / (nChosen * o.V) : 0));
      const rw = rowScaled(weights, rows, T, (r) => (r >= B ? 1 / (nRejected * o.V) : 0));
      logitsChosen = weightedRowSum(v.logitSum!, cw, 1, rows * T);
      logitsRejected = weightedRowSum(v.logitSum!, rw, 1, rows * T);
    });
  }
  return {
    chosen,
    rejected,
    counts,
    chosenLengths,
    rejectedLengths,
    nll,
    wpoWeights,
    wpoSequenceWeights,
    logitsChosen,
    logitsRejected,
  };
}
