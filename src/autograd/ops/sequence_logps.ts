/**
 * Per-sequence log-probs from token log-probs (SPEC "Batches and log-probs"): a weighted row sum whose weights are
 * 1 (or 1/count for means) where the shifted label is scored.
 */
import { tensor } from "../../tensor/create.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { checkIgnore, flattenLabels, type HostLabels, IGNORE_INDEX } from "./labels.ts";
import { weightedRowSum } from "./weighted_row_sum.ts";

export interface SequenceLogpsOptions {
  ignoreIndex?: number;
  /** Divide each row's sum by its number of scored labels (IPO, WPO means). Default false: sums. */
  average?: boolean;
}

export interface SequenceLogps {
  /** [B]: per-sequence Σ of the scored token log-probs (or their mean with `average`). Differentiable. */
  logps: Tensor;
  /** Number of scored labels per sequence (host values; all ≥ 1). */
  counts: Int32Array;
}

/**
 * Per-sequence log-probs from token log-probs [B, T] (e.g. `fusedLogProbs` output reshaped), with host labels
 * [B, T] aligned with them — that is, already shifted with `shiftLabels` (position t holds the label its logits
 * score). Σ over positions whose label is not `ignoreIndex` (SPEC: Σ_t log softmax(logits[t−1])[labels[t]] over
 * t ≥ 1, labels[t] ≠ −100, before the shift). A sequence with no scored label throws, naming the row.
 */
export function sequenceLogps(
  tokenLogps: Tensor,
  labels: HostLabels,
  opts: SequenceLogpsOptions = {},
): SequenceLogps {
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  checkIgnore(ignore);
  if (tokenLogps.ndim !== 2) {
    throw new RangeError(`sequenceLogps: token log-probs must be [B, T], got shape [${tokenLogps.shape}]`);
  }
  const [B, T] = tokenLogps.shape;
  const flat = flattenLabels(labels);
  if (flat.length !== B * T) {
    throw new RangeError(
      `sequenceLogps: expected ${B * T} labels for [${B}, ${T}] token log-probs, got ${flat.length}`,
    );
  }
  const counts = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) if (flat[b * T + t] !== ignore) c++;
    if (c === 0) {
      throw new RangeError(
        `sequenceLogps: sequence ${b} has no scored label (every label is ignoreIndex ${ignore}); ` +
          `its log-prob would be empty — check the prompt/completion lengths and truncation of that row`,
      );
    }
    counts[b] = c;
  }
  const weights = new Float32Array(B * T);
  for (let i = 0; i < B * T; i++) {
    if (flat[i] !== ignore) weights[i] = opts.average ? 1 / counts[Math.floor(i / T)] : 1;
  }
  const w = tensor(weights, [B * T]);
  const logps = weightedRowSum(tokenLogps, w, B, T);
  if (!logps.requiresGrad) w.dispose();
  return { logps, counts };
}
