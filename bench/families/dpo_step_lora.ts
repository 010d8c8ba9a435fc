/**
 * A DPO optimizer step with LoRA vs full fine-tuning, on the bench config of dpo_step.ts (a Llama of hidden 256,
 * 4 layers, 8 heads (4 KV), intermediate 688, vocabulary 8192, sequences of 256 tokens, 2 pairs per micro-batch):
 * tokens per second (the batch's 2·2·256 tokens through the policy forward + backward and the reference forward,
 * counted as the step) and peak GPU bytes of everything the run holds.
 *
 * Variants: `full_ft` (every weight trained; the reference is the trainer's frozen GPU copy), `lora_r16` (LoRA
 * r=16, alpha 32 on all linear layers; the reference is the policy with its adapter disabled, TRL's option 2, so
 * no copy) and `lora_r16_int8` (the same on an int8 base). `trainable` is the number of trained parameters.
 * `--quick` uses a smaller model and 64-token sequences.
 */
import type { DPOTrainer } from "../../src/dpo/trainer.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import { loraOf, unloadLora } from "../../src/nn/lora.ts";
import { disposeQuantized, quantizeBase } from "../../src/nn/lora_quant.ts";
import type { BenchFamily } from "../harness.ts";
import { measureDpoStep } from "./dpo_step.ts";

const LORA = { r: 16, loraAlpha: 32, targetModules: "all-linear" } as const;

export const family: BenchFamily = {
  name: "dpo_step_lora",
  async run(ctx) {
    const common = {
      bench: "dpo_step_lora",
      extra: (t: DPOTrainer) => ({
        trainable: t.optimizer!.params.reduce((s, p) => s + p.size, 0),
      }),
      release: (model: CausalLM) => {
        if (loraOf(model)) unloadLora(model);
        disposeQuantized(model);
      },
    };
    await measureDpoStep(ctx, { ...common, variant: "full_ft" });
    await measureDpoStep(ctx, { ...common, variant: "lora_r16", peftConfig: LORA });
    await measureDpoStep(ctx, {
      ...common,
      variant: "lora_r16_int8",
      peftConfig: LORA,
      prepare: quantizeBase,
    });
  },
};
