/**
 * The real-scale DPO step: a Llama shaped like SmolLM2-135M (hidden 576, 30 layers, 9 heads / 3 KV heads,
 * intermediate 1536, vocabulary 49152, tied embeddings, rope_theta 100000), random init made in-process, 2 pairs
 * per step, full fine-tuning with the trainer's frozen reference copy. Sequence lengths are a seeded mix up to 512
 * tokens that differs from step to step, as real preference data does (so size classes of the pool do not simply
 * repeat). Reports ms/step, tokens/s (real, unpadded tokens of chosen + rejected), model TFLOP/s and MFU where the
 * adapter's f32 peak is known (bench/mfu.ts; `WEBDPO_PEAK_TFLOPS` gives it), dispatches per step, peak live
 * pool bytes, the process's peak RSS, and a memory breakdown at the step's peak:
 *
 *   weights_bytes       the policy's parameters
 *   reference_bytes     the frozen reference copy
 *   gradients_bytes     the parameters' .grad buffers
 *   optimizer_bytes     AdamW's moments
 *   activations_bytes   everything else live at the peak (activations saved for backward, temporaries)
 *   pool_slack_bytes    bytes the pool holds free (allocated, unused) at the end of the last step
 *
 * and the most the pool held from the driver in a step (`peak_reserved_bytes`: live, pooled and given-back
 * buffers not yet destroyed), which the process's RSS follows
 *
 * and the pool after every step (`pooled_after_step`, `live_after_step`, `rss_after_step`), the figures that show
 * whether memory grows with the step count. `--quick` uses a 2-layer, hidden-64 model of the same layout.
 * `WEBDPO_REAL_STEPS=N` sets the number of measured steps (default 3; the first, which compiles, is not timed);
 * `WEBDPO_REAL_LAYERS=L` runs L of the 30 layers (widths and vocabulary unchanged), for long memory runs.
 * `WEBDPO_REAL_CHECKPOINTING=1` turns on `gradient_checkpointing`, and `WEBDPO_REAL_REF_DTYPE=float16` (or
 * bfloat16) stores the frozen reference in 16 bits (`ref_model_init_kwargs`); the row's variant says so.
 */
import { DPOConfig } from "../../src/dpo/config.ts";
import { DPOTrainer, type TrainerCallback } from "../../src/dpo/trainer.ts";
import { dispatchCounter, memoryStats, resetPeakMemory, sync } from "../../mod.ts";
import { initModel } from "../../src/models/init.ts";
import { Generator } from "../../src/tensor/random.ts";
import { adapterName, type BenchContext, type BenchFamily } from "../harness.ts";
import { dpoStepFlops, peakTflops } from "../mfu.ts";
import { numberTokenizer } from "./dpo_step.ts";

/**
 * SmolLM2-135M's shape (config.json of HuggingFaceTB/SmolLM2-135M); `quick` shrinks it for smoke runs.
 * `WEBDPO_REAL_LAYERS` keeps the widths and vocabulary but runs fewer layers (long memory runs on a 2-core machine).
 */
export function realScaleConfig(quick: boolean) {
  const layers = Number(Deno.env.get("WEBDPO_REAL_LAYERS") ?? 30);
  if (!Number.isInteger(layers) || layers < 1) {
    throw new Error(`WEBDPO_REAL_LAYERS must be a positive integer`);
  }
  return {
    model_type: "llama",
    hidden_size: quick ? 64 : 576,
    intermediate_size: quick ? 160 : 1536,
    num_attention_heads: quick ? 4 : 9,
    num_key_value_heads: quick ? 2 : 3,
    num_hidden_layers: quick ? 2 : layers,
    vocab_size: quick ? 2048 : 49152,
    max_position_embeddings: 8192,
    rope_theta: 100000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  };
}

/**
 * Preference rows whose lengths vary as real pairs do: prompts of 24–256 tokens, answers of 16–256, at most
 * `maxLength` tokens in all (seeded, so every run sees the same mix).
 */
export function realisticRows(n: number, maxLength: number, V: number, seed: number) {
  const g = new Generator(seed);
  const ids = (k: number) => Array.from({ length: k }, () => 3 + g.int(V - 3)).join(" ");
  const between = (lo: number, hi: number) => lo + g.int(hi - lo + 1);
  return Array.from({ length: n }, () => {
    const p = between(Math.min(24, maxLength / 4), maxLength / 2);
    const room = maxLength - p - 2;
    const c = between(Math.min(16, room), room);
    const r = between(Math.min(16, room), room);
    return { prompt: ids(p) + " ", chosen: ids(c), rejected: ids(r) };
  });
}

/** Peak resident set of this process (VmHWM), or the current RSS where /proc is not there. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss;
}

function sizeClassBytes(ts: Iterable<{ storage: { buffer: GPUBuffer } }>): number {
  let s = 0;
  const seen = new Set<GPUBuffer>();
  for (const t of ts) {
    if (seen.has(t.storage.buffer)) continue;
    seen.add(t.storage.buffer);
    s += t.storage.buffer.size;
  }
  return s;
}

async function measureRealScale(ctx: BenchContext): Promise<void> {
  const quick = ctx.quick;
  const cfg = realScaleConfig(quick);
  const maxLength = quick ? 64 : 512;
  const pairs = 2;
  const measured = quick ? 2 : Number(Deno.env.get("WEBDPO_REAL_STEPS") ?? 3);
  const steps = measured + 1;
  const checkpointing = Deno.env.get("WEBDPO_REAL_CHECKPOINTING") === "1";
  const refDtype = Deno.env.get("WEBDPO_REAL_REF_DTYPE") ?? "float32";
  await sync();
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  const model = await initModel(cfg, { seed: 1 });
  const data = realisticRows(pairs * steps, maxLength, cfg.vocab_size, 11);
  const times: number[] = [];
  const dispatches: number[] = [];
  const peaks: number[] = [];
  const reservedPeaks: number[] = [];
  const pooledAfter: number[] = [];
  const liveAfter: number[] = [];
  const rssAfter: number[] = [];
  let last = 0;
  let lastDispatches = 0;
  const cb: TrainerCallback = {
    onTrainBegin: async () => {
      await sync();
      last = performance.now();
      lastDispatches = dispatchCounter();
      resetPeakMemory();
    },
    onStepEnd: async () => {
      await sync();
      const now = performance.now();
      times.push(now - last);
      dispatches.push(dispatchCounter() - lastDispatches);
      const m = memoryStats();
      peaks.push(m.peakBytes - before);
      reservedPeaks.push(m.peakReservedBytes - before);
      pooledAfter.push(m.pooledBytes);
      liveAfter.push(m.liveBytes - before);
      rssAfter.push(Deno.memoryUsage().rss);
      resetPeakMemory();
      last = performance.now();
      lastDispatches = dispatchCounter();
    },
  };
  const trainer = new DPOTrainer({
    model,
    tokenizer: numberTokenizer,
    trainDataset: data,
    args: new DPOConfig({
      outputDir: "bench/out/dpo_step_real",
      maxLength,
      maxPromptLength: maxLength / 2,
      perDeviceTrainBatchSize: pairs,
      maxSteps: steps,
      loggingSteps: 1000,
      disableTqdm: true,
      reportTo: ["none"],
      saveStrategy: "no",
      gradientCheckpointing: checkpointing,
      refModelInitKwargs: { torch_dtype: refDtype },
    }),
    callbacks: [cb],
    log: () => {},
  });
  await trainer.train();
  // each sequence: the prompt, the answer and its EOS
  const lengths: number[] = [];
  for (const row of data.slice(pairs)) {
    const p = row.prompt.split(" ").filter(Boolean).length;
    lengths.push(p + row.chosen.split(" ").length + 1, p + row.rejected.split(" ").length + 1);
  }
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const weights = sizeClassBytes(model.parameters());
  const reference = trainer.refModel
    ? sizeClassBytes(trainer.refModel.parameters()) +
      sizeClassBytes(trainer.refModel.packedParameters().map(([, p]) => p.data))
    : 0;
  // a gradient (and each of AdamW's two moments) per trained parameter, each in its own pooled buffer
  const trained = sizeClassBytes(trainer.optimizer?.params ?? []);
  const gradBytes = trained;
  const optimizer = 2 * trained;
  const ms = times.slice(1).reduce((a, b) => a + b, 0) / measured;
  const peak = Math.max(...peaks);
  const tflops = dpoStepFlops(cfg, lengths) / measured / (ms / 1000) / 1e12;
  const adapterPeak = peakTflops(adapterName());
  ctx.emit({
    bench: "dpo_step_real",
    variant: (refDtype === "float32" ? "frozen_ref" : `frozen_ref_${refDtype}`) +
      (checkpointing ? "_checkpointing" : ""),
    shape: `h${cfg.hidden_size} L${cfg.num_hidden_layers} V${cfg.vocab_size} T≤${maxLength} pairs${pairs}`,
    ms,
    tokens_per_s: tokens / (ms * measured / 1000),
    model_tflops: tflops,
    mfu: adapterPeak ? tflops / adapterPeak.tflops : undefined,
    peak_tflops: adapterPeak ? `${adapterPeak.tflops} (${adapterPeak.source})` : undefined,
    dispatches_per_step: dispatches[dispatches.length - 1],
    peak_bytes: peak,
    peak_reserved_bytes: Math.max(...reservedPeaks),
    peak_rss: peakRss(),
    weights_bytes: weights,
    reference_bytes: reference,
    gradients_bytes: gradBytes,
    optimizer_bytes: optimizer,
    activations_bytes: peak - weights - reference - gradBytes - optimizer,
    pool_slack_bytes: pooledAfter[pooledAfter.length - 1],
    pooled_after_step: pooledAfter.join(","),
    live_after_step: liveAfter.join(","),
    rss_after_step: rssAfter.join(","),
  });
  trainer.dispose();
  model.dispose();
}

export const family: BenchFamily = {
  name: "dpo_step_real",
  run: (ctx) => measureRealScale(ctx),
};
