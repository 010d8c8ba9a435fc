/**
 * crossEntropy(h, W, labels) = mean over the non-ignored labels of −log softmax(h·Wᵀ)[label], through the fused
 * log-prob kernel (the [N, V] logits are never materialised). For supervised fine-tuning and RPO's NLL term.
 * Labels are host integers (the collator's), aligned with the rows of h — use `shiftLabels` for the causal
 * shift; the count of scored labels is known on the host, and a batch with none throws.
 */
import { tensor } from "../../tensor/create.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { fusedLogProbs, type FusedLogProbsOptions } from "./fused_logprobs.ts";
import { checkLabels, flattenLabels, type HostLabels, IGNORE_INDEX } from "./labels.ts";
import { reshape } from "./reshape.ts";
import { weightedRowSum } from "./weighted_row_sum.ts";

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
  checkLabels("crossEntropy", flat, N, W.shape[0], ignore);
  // host labels let the log-probs run the LM head on the scored rows only (and find packed rows: opts.hRows)
  const lab = opts.scoredRowsOnly === false ? tensor(flat, [N], { dtype: "i32" }) : null;
  const tok = fusedLogProbs(h, W, lab ?? flat, opts);
  // the mean as one weighted row: −1/count on the scored positions, 0 elsewhere
  const weights = new Float32Array(N);
  for (let i = 0; i < N; i++) if (flat[i] !== ignore) weights[i] = -1 / count;
  const w = tensor(weights, [N]);
  const loss = reshape(weightedRowSum(reshape(tok, [1, N]), w, 1, N), []);
  if (!loss.requiresGrad) {
    w.dispose();
    lab?.dispose();
  }
  return loss;
}
