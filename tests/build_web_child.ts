/**
 * For build_web_test.ts: `deno run -A tests/build_web_child.ts <bundle webdpo.js> <model folder URL>` imports the
 * browser bundle (not src/), so everything runs on the bundle's default platform (the browser's): the model
 * folder mounted from a URL, outputs on an in-memory folder handle. Loads examples/tiny-chat, runs four DPO
 * steps of the demo's settings, saves the model, and prints one JSON line with what it saw.
 */
import { MemoryDir } from "./io/memory_handle.ts";

const [bundle, modelUrl] = Deno.args;
const w = await import(bundle);
const out = new MemoryDir();
w.setPlatform(w.browserPlatform({ mounts: { "/model": modelUrl, "/out": out } }));
const logs: string[] = [];
w.setSink({ log: (l: string) => logs.push(l), warn: (m: string) => logs.push(`warn: ${m}`) });

const model = await w.loadModel("/model");
const tokenizer = await w.loadTokenizer("/model");
const trainDataset = await w.loadDataset("/model/data/dpo_train.jsonl");
const args = new w.DPOConfig({
  outputDir: "/out/run",
  lossType: "sigmoid",
  beta: 1,
  learningRate: 5e-4,
  rpoAlpha: 1,
  maxSteps: 4,
  perDeviceTrainBatchSize: 16,
  lrSchedulerType: "constant",
  loggingSteps: 1,
  maxLength: 96,
  maxPromptLength: 64,
  seed: 42,
  saveStrategy: "no",
});
const trainer = new w.DPOTrainer({ model, tokenizer, args, trainDataset });
await trainer.train();
trainer.dispose();
await w.saveModel(model, "/out/saved", { tokenizer });
console.log(JSON.stringify({
  host: w.platform().host.name,
  losses: trainer.state.logHistory.filter((e: Record<string, number>) => "loss" in e).map((
    e: Record<string, number>,
  ) => e.loss),
  files: out.tree(),
  logs: logs.length,
}));
