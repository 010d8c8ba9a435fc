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
import { DPOConfig } from "../../src/dpo/config.ts";
import { DPOTrainer } from "../../src/dpo/trainer.ts";
import { memoryStats, resetPeakMemory, sync } from "../../mod.ts";
import { initModel } from "../../src/models/init.ts";
import { loraOf, unloadLora } from "../../src/nn/lora.ts";
import { disposeQuantized, quantizeBase } from "../../src/nn/lora_quant.ts";
import type { BenchContext, BenchFamily } from "../harness.ts";
import { benchConfig, numberTokenizer, rows, stepTimer } from "./dpo_step.ts";

type Variant = "full_ft" | "lora_r16" | "lora_r16_int8";

async function run(ctx: BenchContext, variant: Variant): Promise<void> {
  const quick = ctx.quick;
  const cfg = benchConfig(quick);
  const T = quick ? 64 : 256;
  const pairs = 2;
  const steps = quick ? 2 : 3;
  await sync();
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  const model = await initModel(cfg, { seed: 1 });
  if (variant === "lora_r16_int8") await quantizeBase(model);
  const data = rows(pairs * (steps + 1), T / 4, T - T / 4 - 2, cfg.vocab_size, 3);
  const timer = stepTimer();
  const trainer = new DPOTrainer({
    model,
    tokenizer: numberTokenizer,
    trainDataset: data,
    args: new DPOConfig({
      outputDir: "bench/out/dpo_step_lora",
      maxLength: T,
      maxPromptLength: T / 2,
      perDeviceTrainBatchSize: pairs,
      maxSteps: steps + 1,
      loggingSteps: 1000,
      disableTqdm: true,
      reportTo: ["none"],
      saveStrategy: "no",
    }),
    peftConfig: variant === "full_ft" ? null : { r: 16, loraAlpha: 32, targetModules: "all-linear" },
    callbacks: [timer.callback],
    log: () => {},
  });
  await trainer.train();
  const peak = memoryStats().peakBytes - before;
  const ms = timer.meanMs();
  const tokens = 2 * pairs * T;
  const trainable = trainer.optimizer!.params.reduce((s, p) => s + p.size, 0);
  ctx.emit({
    bench: "dpo_step_lora",
    variant,
    shape: `h${cfg.hidden_size} L${cfg.num_hidden_layers} V${cfg.vocab_size} T${T} pairs${pairs}`,
    ms,
    tokens_per_s: tokens / (ms / 1000),
    peak_bytes: peak,
    trainable,
  });
  trainer.dispose();
  if (loraOf(model)) unloadLora(model);
  disposeQuantized(model);
  model.dispose();
}

export const family: BenchFamily = {
  name: "dpo_step_lora",
  async run(ctx) {
    await run(ctx, "full_ft");
    await run(ctx, "lora_r16");
    await run(ctx, "lora_r16_int8");
  },
};
