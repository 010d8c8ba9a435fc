/**
 * crossEntropy(h, W, labels) = mean over the non-ignored labels of −log softmax(h·Wᵀ)[label], through the fused
 * log-prob kernel (the [N, V] logits are never materialised). For supervised fine-tuning and RPO's NLL term.
 * Labels are host integers (the collator's), aligned with the rows of h — use `shiftLabels` for the causal
 * shift; the count of scored labels is known on the host, and a batch with none throws.
 */
import { tensor } from "../../tensor/create.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import {
  flattenLabels,
  fusedLogProbs,
  type FusedLogProbsOptions,
  type HostLabels,
  IGNORE_INDEX,
  maskedRowSum,
  uploadLabels,
} from "./logprobs.ts";
import { reshape } from "./reshape.ts";

/** Returns a scalar (shape []): −(1/count)·Σ log p(label) over labels ≠ ignoreIndex. */
export function crossEntropy(
  h: Tensor,
  W: Tensor,
  labels: HostLabels,
  opts: FusedLogProbsOptions = {},
): Tensor {
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  const flat = flattenLabels(labels);
  let count = 0;
  for (const v of flat) if (v !== ignore) count++;
  if (count === 0) {
    throw new RangeError(
      `crossEntropy: every one of the ${flat.length} labels is ignoreIndex ${ignore}; the mean over no tokens ` +
        `is undefined — the batch has no completion tokens to train on`,
    );
  }
  const N = flat.length;
  // one validated upload of the labels, shared by the log-prob kernel and the masked mean
  const lab = uploadLabels("crossEntropy", flat, N, W.shape[0], ignore);
  // host labels let the log-probs run the LM head on the scored rows only (and find packed rows: opts.hRows)
  const tok = fusedLogProbs(h, W, opts.scoredRowsOnly === false ? lab : flat, opts);
  const scale = tensor([-1 / count], [1]);
  const sum = maskedRowSum(reshape(tok, [1, N]), lab, scale, 1, N, ignore);
  const loss = reshape(sum, []);
  if (!loss.requiresGrad) {
    lab.dispose();
    scale.dispose();
  }
  return loss;
}
