/**
 * `deno task profile [options]`: where the GPU time of DPO training steps goes, kernel by kernel.
 *
 * Runs DPOTrainer steps (by default the demo's: examples/tiny-chat on its training pairs, 16 pairs per step),
 * profiles the steps after the first two (pipelines compiled, pool warm) with timestamp queries
 * (src/gpu/profile.ts), and prints each kernel entry point's dispatches, GPU time and share, plus the wall time
 * per step, so the gap between wall time and GPU time (host overhead) shows too. `--json` prints the rows as
 * JSON lines instead.
 */
import { parseArgs } from "node:util";
import { formatKernelProfile, init, startKernelProfile, stopKernelProfile, sync } from "../mod.ts";
import { loadDataset } from "../src/data/dataset.ts";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { loadModel } from "../src/models/loader.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";

const TINY_CHAT = new URL("../examples/tiny-chat", import.meta.url).pathname;
const USAGE = `usage: deno task profile [options]
  --model DIR         a Hugging Face model folder (default examples/tiny-chat)
  --data FILE         preference data (default the model folder's data/dpo_train.jsonl)
  --steps N           profiled optimizer steps, after 2 warm-up steps (default 10)
  --batch_size N      pairs per step (default 16)
  --max_length N      the trainer's max_length (default 96)
  --loss_type NAME    the DPO loss (default sigmoid)
  --json              one JSON object per kernel instead of the table`;

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: TINY_CHAT },
    data: { type: "string" },
    steps: { type: "string", default: "10" },
    batch_size: { type: "string", default: "16" },
    max_length: { type: "string", default: "96" },
    loss_type: { type: "string", default: "sigmoid" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (a.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const int = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got "${v}"\n\n${USAGE}`);
    Deno.exit(2);
  }
  return n;
};
const steps = int("steps", a.steps!), batch = int("batch_size", a.batch_size!);
const maxLength = int("max_length", a.max_length!);
const WARMUP = 2;

const info = await init();
const model = await loadModel(a.model!);
const tokenizer = await loadTokenizer(a.model!);
const data = await loadDataset(a.data ?? `${a.model}/data/dpo_train.jsonl`);
const trainer = new DPOTrainer({
  model,
  tokenizer,
  trainDataset: data,
  args: new DPOConfig({
    outputDir: await Deno.makeTempDir({ prefix: "webdpo-profile-" }),
    lossType: a.loss_type as DPOConfig["lossType"],
    maxSteps: WARMUP + steps,
    perDeviceTrainBatchSize: batch,
    maxLength,
    maxPromptLength: Math.floor(maxLength * 2 / 3),
    loggingSteps: 1 << 30,
    saveStrategy: "no",
    disableTqdm: true,
    lrSchedulerType: "constant",
  }),
  log: () => {},
});
let t0 = 0;
trainer.callbacks.push({
  onStepEnd: async (s) => {
    if (s.globalStep !== WARMUP) return;
    await sync();
    startKernelProfile();
    t0 = performance.now();
  },
});
await trainer.train();
const rows = await stopKernelProfile();
const wallMs = (performance.now() - t0) / steps;
const gpuMs = rows.reduce((s, r) => s + r.ms, 0) / steps;
trainer.dispose();
model.dispose();
if (a.json) {
  for (const r of rows) {
    console.log(JSON.stringify({ ...r, ms_per_step: r.ms / steps, adapter: info.adapterName }));
  }
} else {
  console.log(`adapter: ${info.adapterName}`);
  console.log(
    `${a.model}: ${steps} steps of ${batch} pairs; per step ${wallMs.toFixed(1)} ms wall, ${
      gpuMs.toFixed(1)
    } ms in kernels (profiled: one compute pass per dispatch)\n`,
  );
  console.log(formatKernelProfile(rows));
}
