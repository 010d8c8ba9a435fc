/**
 * What a DPO run will hold at its peak, estimated before anything large is allocated, and the guard that refuses
 * a run the machine cannot hold: a process the OOM killer ends loses the run, a refusal loses nothing.
 *
 * The estimate is per part (bytes of f32 buffers):
 *   weights      the policy's parameters (already loaded when the trainer starts)
 *   reference    the frozen copy the trainer makes (none with LoRA, reference_free or precomputed log-probs); half
 *                the bytes when it is stored in 16 bits
 *   gradients    one per trained parameter
 *   optimizer    AdamW's two moments per trained parameter
 *   activations  what the policy forward keeps for backward, for the batch's rows at the longest length, plus
 *                what the step holds besides (the LM head's log-prob chunks, backward's transient gradients)
 *
 * Activations per token and decoder layer (llama.ts after its early frees, with the norm outputs, the merged
 * heads and the SwiGLU output recomputed in backward: src/autograd/recompute.ts): the two norm inputs, q, k, v,
 * the attention output, and the MLP's gate and up: 2C + 2·H·D + 2·KV·D + 2I floats (GPT-2: 2C + 4C + 4C, the
 * GELU input).
 * With gradient checkpointing a layer keeps only its input (C), and one layer's full activations exist at a time.
 * ACTIVATION_SLACK covers what the formula leaves out (size-class rounding, backward's transients and refills):
 * on the real-scale bench the formula gives 1.40 GB for the longest step (4 rows of 507 tokens) where 1.65 GB were
 * measured (bench/RESULTS.md, session 4).
 *
 * The process holds more than the pool's live bytes: the allocators below keep freed memory, so the peak RSS was
 * 1.26× the peak live bytes on that bench. The guard multiplies what the run will add by PROCESS_OVERHEAD, a
 * little below that, so that it refuses only runs that would clearly not fit.
 */
import { host } from "../io/platform.ts";
import type { ModelConfig } from "../models/config.ts";

/** Measured peak activations over the formula's (1.65 / 1.40 GB on the SmolLM2-135M-shaped bench), rounded up. */
export const ACTIVATION_SLACK = 1.2;

/** Process memory per byte of pool memory a run adds (peak RSS / peak live was 1.26 on the bench). */
export const PROCESS_OVERHEAD = 1.25;

export interface MemoryEstimate {
  weights: number;
  reference: number;
  gradients: number;
  optimizer: number;
  activations: number;
  /** The sum of the parts. */
  total: number;
}

export interface EstimateInput {
  config: ModelConfig;
  /** Parameters of the policy (elements). */
  params: number;
  /** Parameters that get gradients and optimizer state (elements). */
  trainable: number;
  /** Whether the trainer will copy the policy as the reference. */
  referenceCopy: boolean;
  /** Whether that copy is stored in 16 bits (its vectors, a negligible share, stay f32). */
  referenceHalf?: boolean;
  /** Rows of one micro-batch (2 × per_device_train_batch_size: chosen and rejected). */
  rows: number;
  /** The longest row, in tokens (the batch is padded to it). */
  tokens: number;
  gradientCheckpointing: boolean;
}

/** Floats kept for backward per token and decoder layer. */
function perTokenLayer(c: ModelConfig): number {
  const C = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
  if (c.architecture === "gpt2") return 2 * C + 4 * C + I;
  return 2 * C + 2 * c.numHeads * D + 2 * c.numKvHeads * D + 2 * I;
}

/** The run's peak, per part, in bytes. */
export function estimateDpoMemory(e: EstimateInput): MemoryEstimate {
  const c = e.config;
  const weights = 4 * e.params;
  const reference = e.referenceCopy ? (e.referenceHalf ? weights / 2 : weights) : 0;
  const gradients = 4 * e.trainable;
  const optimizer = 8 * e.trainable;
  const tokens = e.rows * e.tokens;
  const layer = perTokenLayer(c) * tokens * 4;
  const kept = e.gradientCheckpointing
    ? c.numLayers * c.hiddenSize * tokens * 4 + layer
    : c.numLayers * layer;
  // the final hidden states, their gradient and the LM head's log-prob chunks
  const head = 3 * tokens * c.hiddenSize * 4;
  const activations = Math.ceil((kept + head) * ACTIVATION_SLACK);
  return {
    weights,
    reference,
    gradients,
    optimizer,
    activations,
    total: weights + reference + gradients + optimizer + activations,
  };
}

let availableOverride: number | null = null;

/** Pretends the machine has `bytes` free (null: ask the OS again): for tests of the guard. */
export function setAvailableMemoryOverride(bytes: number | null): void {
  availableOverride = bytes;
}

/** Bytes the OS says it can still give this process (Linux MemAvailable), or null where that is unknown. */
export function availableMemory(): number | null {
  if (availableOverride !== null) return availableOverride;
  return host().availableMemory();
}

/** "1.23 GB". */
export function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(2)} GB`;
}
