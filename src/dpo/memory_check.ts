/**
 * The DPO trainer's memory guard: before the reference copy and the first step allocate anything, a run whose
 * estimated peak (memory_estimate.ts) does not fit the memory this machine has free is refused, on CPU adapters,
 * where the GPU's memory is the process's (WebGPU tells nothing of a GPU's free memory). The message gives the
 * estimate and which of the usual remedies would fit. `WEBDPO_NO_MEMORY_CHECK=1` turns it off.
 */
import { gpu, isCpuAdapter } from "../gpu/device.ts";
import { host } from "../io/platform.ts";
import { memoryStats } from "../gpu/pool.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { HalfDtype } from "../nn/half_weights.ts";
import { namedTrainableParametersOf } from "../nn/lora.ts";
import { TrainingError } from "../train/state.ts";
import type { DPOConfig } from "./config.ts";
import {
  availableMemory,
  estimateDpoMemory,
  gb,
  type MemoryEstimate,
  PROCESS_OVERHEAD,
} from "./memory_estimate.ts";

/** What the guard looks at. */
export interface MemoryCheckInput {
  model: CausalLM;
  args: DPOConfig;
  /** The longest tokenized sequence of the run (chosen or rejected, train or eval). */
  tokens: number;
  /** Whether an explicit reference model was passed (no frozen copy is made then). */
  hasRefModel: boolean;
  /** Whether the policy trains a LoRA adapter only. */
  lora: boolean;
  /** The 16-bit format the frozen copy will be stored in (ref_model_init_kwargs' torch_dtype), or null for f32. */
  refDtype?: HalfDtype | null;
}

/** Throws a TrainingError when the run would not fit the free memory; returns otherwise. */
export function checkMemory(x: MemoryCheckInput): void {
  if (host().env("WEBDPO_NO_MEMORY_CHECK")) return; // undefined without --allow-env: check
  if (!isCpuAdapter(gpu().info)) return;
  const free = availableMemory();
  if (free === null) return;
  const a = x.args;
  const tokens = x.tokens;
  const params = x.model.parameters().reduce((n, p) => n + p.size, 0);
  const trainable = x.lora ? namedTrainableParametersOf(x.model).reduce((n, [, p]) => n + p.size, 0) : params;
  const base = {
    config: x.model.config,
    params,
    trainable,
    referenceCopy: !a.referenceFree && !x.hasRefModel && !x.lora,
    referenceHalf: !!x.refDtype,
    rows: 2 * a.perDeviceTrainBatchSize,
    tokens,
    gradientCheckpointing: a.gradientCheckpointing,
  };
  const held = memoryStats().liveBytes; // the policy's weights, loaded already
  // what the run adds to the process (the loaded weights are in it already), with the allocators' overhead
  const adds = (e: MemoryEstimate) => (e.total - Math.min(held, e.weights)) * PROCESS_OVERHEAD;
  const fits = (e: MemoryEstimate) => adds(e) <= free;
  const est = estimateDpoMemory(base);
  if (fits(est)) return;
  const options: [string, MemoryEstimate][] = [
    [
      "LoRA (peft_config; no reference copy, gradients and AdamW state for the adapter only)",
      estimateDpoMemory({ ...base, trainable: Math.ceil(params / 100), referenceCopy: false }),
    ],
    ["gradient_checkpointing: true", estimateDpoMemory({ ...base, gradientCheckpointing: true })],
    ...(base.referenceCopy && !base.referenceHalf
      ? [[
        "ref_model_init_kwargs: {torch_dtype: float16} (the frozen reference copy stored in 16 bits)",
        estimateDpoMemory({ ...base, referenceHalf: true }),
      ] as [string, MemoryEstimate]]
      : []),
    [
      "precompute_ref_log_probs: true (the reference copy is freed before training)",
      estimateDpoMemory({ ...base, referenceCopy: false }),
    ],
  ];
  if (a.perDeviceTrainBatchSize > 1) {
    const b = Math.floor(a.perDeviceTrainBatchSize / 2);
    options.push([
      `per_device_train_batch_size: ${b} (with gradient_accumulation_steps × 2 for the same batch)`,
      estimateDpoMemory({ ...base, rows: 2 * b }),
    ]);
  }
  const shorter = Math.max(1, Math.floor(tokens / 2));
  options.push([`max_length: ${shorter}`, estimateDpoMemory({ ...base, tokens: shorter })]);
  const good = options.filter(([, e]) => fits(e)).map(([name, e]) => `${name} (about ${gb(e.total)})`);
  throw new TrainingError(
    `this run needs about ${gb(est.total)} at its peak (weights ${gb(est.weights)}, reference copy ` +
      `${gb(est.reference)}, gradients ${gb(est.gradients)}, AdamW state ${gb(est.optimizer)}, ` +
      `activations ${gb(est.activations)} for ${base.rows} rows of up to ${tokens} tokens): about ` +
      `${gb(adds(est))} more process memory than it holds now, and this machine has ${gb(free)} free, ` +
      `so it would be killed for lack of memory. ` +
      (good.length
        ? `These would fit: ${good.join("; ")}.`
        : "None of LoRA, gradient_checkpointing, precompute_ref_log_probs, a smaller batch or half the " +
          "max_length alone would fit: combine them, or use a machine with more memory.") +
      " Set WEBDPO_NO_MEMORY_CHECK=1 to run anyway.",
  );
}
