/**
 * The run of examples/dpo.yaml through the TypeScript API: DPO on a local SmolLM2-135M-Instruct folder with a
 * folder of preference pairs (prefs/train.jsonl, prefs/test.jsonl).
 *
 *   deno run -A examples/train_dpo.ts [MODEL_DIR] [DATA_DIR] [OUTPUT_DIR]
 *
 * Outside a checkout, import from "jsr:@webdpo/webdpo" instead of "../mod.ts".
 */
import { DPOConfig, DPOTrainer, loadDataset, loadModel, loadTokenizer } from "../mod.ts";

const [modelDir = "./SmolLM2-135M-Instruct", dataDir = "./prefs", outputDir = "./SmolLM2-135M-Instruct-DPO"] =
  Deno.args;

// The same options as examples/dpo.yaml, in camelCase. Invalid values or combinations throw a ConfigError that
// says what is allowed.
const args = new DPOConfig({
  outputDir,
  lossType: "sigmoid",
  beta: 0.5,
  maxLength: 1024,
  maxPromptLength: 512,
  learningRate: 1e-6,
  lrSchedulerType: "cosine",
  warmupRatio: 0.1,
  numTrainEpochs: 1,
  perDeviceTrainBatchSize: 2,
  gradientAccumulationSteps: 8,
  maxGradNorm: 1.0,
  gradientCheckpointing: true,
  seed: 42,
  loggingSteps: 10,
  evalStrategy: "steps",
  evalSteps: 100,
  perDeviceEvalBatchSize: 4,
  saveStrategy: "steps",
  saveSteps: 200,
  saveTotalLimit: 3,
});

// The policy (its weights stream from model.safetensors to the GPU) and its tokenizer from the same folder.
const model = await loadModel(modelDir);
const tokenizer = await loadTokenizer(modelDir);

// Rows stream from disk on every pass; nothing is tokenized until train() starts.
const trainDataset = await loadDataset(dataDir, { split: "train" });
const evalDataset = await loadDataset(dataDir, { split: "test" });

// No refModel: the reference is a frozen copy of the starting policy, made on the GPU.
const trainer = new DPOTrainer({
  model,
  tokenizer,
  args,
  trainDataset,
  evalDataset,
  callbacks: [{
    onEvaluate(state, metrics) {
      const acc = metrics["eval_rewards/accuracies"];
      console.log(`step ${state.globalStep}: held-out preference accuracy ${(100 * acc).toFixed(1)}%`);
    },
  }],
});

const result = await trainer.train();
await trainer.save(outputDir); // config.json, model.safetensors, tokenizer files: a folder transformers loads
console.log(
  `${result.globalStep} steps, mean training loss ${result.trainingLoss.toFixed(4)}; saved to ${outputDir}`,
);
console.log(`plot the run with: deno run -A jsr:@webdpo/webdpo/cli plot ${outputDir}`);

trainer.dispose();
model.dispose();
