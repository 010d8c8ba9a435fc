/**
 * A full DPO optimizer step on a Llama of hidden 256, 4 layers, 8 heads (4 KV), intermediate 688, vocabulary 8192,
 * sequences of 256 tokens, 2 pairs per micro-batch: tokens per second (the batch's 2·2·256 tokens through the policy
 * forward + backward and the reference forward, counted as the step) and peak GPU bytes, with a frozen reference
 * model and with precomputed reference log-probs. Peak bytes count everything the run holds: policy, reference,
 * gradients, optimizer state and activations. `--quick` uses a smaller model and 64-token sequences.
 */
import { DPOConfig } from "../../src/dpo/config.ts";
import { DPOTrainer, type TrainerCallback } from "../../src/dpo/trainer.ts";
import { memoryStats, resetPeakMemory, sync } from "../../mod.ts";
import { initModel } from "../../src/models/init.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import { Generator } from "../../src/tensor/random.ts";
import type { BenchContext, BenchFamily } from "../harness.ts";

/** Token ids written as space-separated numbers: a tokenizer the bench needs no files for. */
export const numberTokenizer = {
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
  encode: (s: string) => s.split(" ").filter((x) => x !== "").map(Number),
  decode: (ids: number[]) => ids.join(" "),
  applyChatTemplate: () => {
    throw new Error("not conversational");
  },
};

/** Random preference rows in the number tokenizer's text. */
export function rows(n: number, promptLen: number, answerLen: number, V: number, seed: number) {
  const g = new Generator(seed);
  const ids = (k: number) => Array.from({ length: k }, () => 3 + g.int(V - 3)).join(" ");
  return Array.from({ length: n }, () => ({
    prompt: ids(promptLen) + " ",
    chosen: ids(answerLen),
    rejected: ids(answerLen),
  }));
}

/** Wall time of each optimizer step (waiting for the GPU at each step's end); the mean skips the first step. */
export function stepTimer(): { callback: TrainerCallback; meanMs: () => number } {
  const times: number[] = [];
  let last = 0;
  return {
    callback: {
      onTrainBegin: () => {
        last = performance.now();
      },
      onStepEnd: async () => {
        await sync();
        const now = performance.now();
        times.push(now - last);
        last = now;
      },
    },
    meanMs: () => {
      const measured = times.slice(1); // the first step compiles pipelines
      return measured.reduce((a, b) => a + b, 0) / measured.length;
    },
  };
}

/** The bench model: a Llama of hidden 256, 4 layers, 8 heads (4 KV), intermediate 688, vocabulary 8192. */
export function benchConfig(quick: boolean) {
  return {
    model_type: "llama",
    hidden_size: quick ? 64 : 256,
    intermediate_size: quick ? 172 : 688,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    num_hidden_layers: quick ? 2 : 4,
    vocab_size: quick ? 2048 : 8192,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
  };
}

/** One measured DPO-step variant of the bench config (shared with dpo_step_lora.ts). */
export interface StepVariant {
  bench: string;
  variant: string;
  precomputeRefLogProbs?: boolean;
  peftConfig?: ConstructorParameters<typeof DPOTrainer>[0]["peftConfig"];
  /** Changes the fresh model before training (e.g. quantising its base). */
  prepare?: (model: CausalLM) => Promise<unknown>;
  /** Extra fields of the result line, from the trained trainer. */
  extra?: (trainer: DPOTrainer) => Record<string, number>;
  /** Releases what `prepare` or the trainer attached to the model, before the model itself. */
  release?: (model: CausalLM) => void;
}

/**
 * Trains the bench model for a few DPO steps (the first one, which compiles pipelines, not timed) and emits mean
 * step time, tokens per second and peak GPU bytes of everything the run holds.
 */
export async function measureDpoStep(ctx: BenchContext, v: StepVariant): Promise<void> {
  const quick = ctx.quick;
  const cfg = benchConfig(quick);
  const T = quick ? 64 : 256;
  const pairs = 2;
  const steps = quick ? 2 : 3;
  await sync();
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  const model = await initModel(cfg, { seed: 1 });
  await v.prepare?.(model);
  const data = rows(pairs * (steps + 1), T / 4, T - T / 4 - 2, cfg.vocab_size, 3);
  const timer = stepTimer();
  const trainer = new DPOTrainer({
    model,
    tokenizer: numberTokenizer,
    trainDataset: data,
    args: new DPOConfig({
      outputDir: `bench/out/${v.bench}`,
      maxLength: T,
      maxPromptLength: T / 2,
      perDeviceTrainBatchSize: pairs,
      maxSteps: steps + 1,
      loggingSteps: 1000,
      precomputeRefLogProbs: v.precomputeRefLogProbs ?? false,
      disableTqdm: true,
      reportTo: ["none"],
      saveStrategy: "no",
    }),
    peftConfig: v.peftConfig ?? null,
    callbacks: [timer.callback],
    log: () => {},
  });
  await trainer.train();
  const peak = memoryStats().peakBytes - before;
  const ms = timer.meanMs();
  const tokens = 2 * pairs * T;
  ctx.emit({
    bench: v.bench,
    variant: v.variant,
    shape: `h${cfg.hidden_size} L${cfg.num_hidden_layers} V${cfg.vocab_size} T${T} pairs${pairs}`,
    ms,
    tokens_per_s: tokens / (ms / 1000),
    peak_bytes: peak,
    ...v.extra?.(trainer),
  });
  trainer.dispose();
  v.release?.(model);
  model.dispose();
}

export const family: BenchFamily = {
  name: "dpo_step",
  async run(ctx) {
    await measureDpoStep(ctx, { bench: "dpo_step", variant: "frozen_ref" });
    await measureDpoStep(ctx, { bench: "dpo_step", variant: "precomputed_ref", precomputeRefLogProbs: true });
  },
};
