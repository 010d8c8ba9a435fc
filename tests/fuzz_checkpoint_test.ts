/**
 * Fuzzes what a resume reads from a checkpoint folder: the loop's JSON files (trainer_state.json, rng_state.json,
 * scheduler.json, webdpo_state.json, training_args.json), each damaged in turn, and optimizer.safetensors (its
 * webdpo_optimizer metadata damaged as JSON, its header damaged as bytes), bco_state.json, and the manifest
 * (webdpo_manifest.json damaged, or a file it lists damaged under it).
 */
import fc from "fast-check";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { damagedJsonFile, jsonBytes, mutatedBytes, mutatedJson } from "./fuzz_mutations.ts";
import { hfTrainerState } from "../src/train/checkpoint.ts";
import { writeSafetensors } from "../src/models/safetensors.ts";
import { MANIFEST_FILE, writeManifest } from "../src/train/checkpoint_manifest.ts";
import { METRIC_SLOTS, TRAIN_EXAMPLES } from "./fuzz_targets/checkpoint.ts";

const TARGETS = new URL("./fuzz_targets/checkpoint.ts", import.meta.url);

/** The loop's files of a checkpoint at step 6 of a run on TRAIN_EXAMPLES examples (as writeLoopFiles writes). */
const LOOP_FILES: Record<string, unknown> = {
  "trainer_state.json": hfTrainerState({
    globalStep: 6,
    epoch: 1.5,
    maxSteps: 8,
    numTrainEpochs: 2,
    loggingSteps: 2,
    evalSteps: 4,
    saveSteps: 3,
    trainBatchSize: 2,
    logHistory: [
      { loss: 0.69, learning_rate: 1e-3, step: 2, epoch: 0.5 },
      { eval_loss: "NaN", step: 4 } as never,
    ],
    bestMetric: null,
    bestModelCheckpoint: null,
  }),
  "rng_state.json": {
    seed: 42,
    data_seed: null,
    shuffle_seed: 42,
    epoch: 1,
    examples_seen_in_epoch: 4,
    num_train_examples: TRAIN_EXAMPLES,
    order: "epoch e visits the examples in the order Generator(shuffle_seed + 7919 * e).shuffle([0, n))",
  },
  "scheduler.json": {
    step_count: 6,
    last_epoch: 6,
    lr_scheduler_type: "linear",
    base_lrs: [1e-3],
    last_lr: [2e-4],
  },
  "webdpo_state.json": {
    format: 1,
    global_step: 6,
    metric_slots: ["loss", "a", "b"].slice(0, METRIC_SLOTS),
    log_window: [[0.5, 1, 2]],
    train_loss_sum: 2.07,
    train_loss_count: 3,
    best_step: null,
  },
  "training_args.json": { beta: 0.1, seed: 42 },
};

/** The checkpoint's loop files with one of them damaged. */
const damagedLoopFiles = fc.oneof(
  ...Object.entries(LOOP_FILES).map(([name, json]) =>
    damagedJsonFile(json, 2).map((bytes) => ({
      files: {
        ...Object.fromEntries(Object.entries(LOOP_FILES).map(([n, j]) => [n, jsonBytes(j, 2)])),
        [name]: bytes,
      },
    }))
  ),
);

const OPTIMIZER_META = {
  version: 1,
  params: [{ index: 0, name: "w", step: 6, key: "w" }, { index: 1, name: null, step: 6, key: "param.1" }],
  groups: [{ lr: 2e-4, initialLr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, params: [0, 1] }],
};

/** optimizer.safetensors as writeOptimizer writes it, with `meta` as its webdpo_optimizer metadata. */
async function optimizerFile(meta: unknown): Promise<Uint8Array> {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    const t = (shape: number[]) => ({
      shape,
      data: new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(0.5),
    });
    await writeSafetensors(path, [
      { name: "w.exp_avg", ...t([2, 3]) },
      { name: "w.exp_avg_sq", ...t([2, 3]) },
      { name: "param.1.exp_avg", ...t([4]) },
      { name: "param.1.exp_avg_sq", ...t([4]) },
    ], { metadata: { webdpo_optimizer: JSON.stringify(meta), step: "6" } });
    return await Deno.readFile(path);
  } finally {
    await Deno.remove(path);
  }
}

/** The metadata damaged as JSON (files made up front: fast-check's arbitraries are synchronous). */
const DAMAGED_META = await Promise.all(
  fc.sample(mutatedJson(OPTIMIZER_META), { numRuns: 200, seed: 7 }).map(optimizerFile),
);
const OPTIMIZER = await optimizerFile(OPTIMIZER_META);
const HEADER_END = 8 + Number(new DataView(OPTIMIZER.buffer).getBigUint64(0, true));

/** A checkpoint's files (the loop's JSON files and optimizer.safetensors) and the manifest written for them. */
const CHECKPOINT: Record<string, Uint8Array> = {
  ...Object.fromEntries(Object.entries(LOOP_FILES).map(([n, j]) => [n, jsonBytes(j, 2)])),
  "optimizer.safetensors": OPTIMIZER,
};
const MANIFEST = await (async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-fuzz-manifest-" });
  try {
    for (const [name, bytes] of Object.entries(CHECKPOINT)) await Deno.writeFile(`${dir}/${name}`, bytes);
    await writeManifest(dir);
    return JSON.parse(await Deno.readTextFile(`${dir}/${MANIFEST_FILE}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
})();

/** The checkpoint with its manifest damaged, or one of its files damaged under the intact manifest. */
const damagedManifestCases = fc.oneof(
  damagedJsonFile(MANIFEST, 2).map((m) => ({ ...CHECKPOINT, [MANIFEST_FILE]: m })),
  fc.constantFrom(...Object.keys(CHECKPOINT)).chain((name) =>
    mutatedBytes(CHECKPOINT[name]).map((bytes) => ({
      ...CHECKPOINT,
      [name]: bytes,
      [MANIFEST_FILE]: jsonBytes(MANIFEST, 2),
    }))
  ),
);

fuzzTests("fuzz checkpoint", [
  fuzzStep("the loop's JSON files damaged", {
    module: TARGETS,
    target: "loopFiles",
    cases: damagedLoopFiles,
    request: (c) => c,
    names: /(trainer_state|rng_state|scheduler|webdpo_state|training_args)\.json/,
    runs: 90,
  }),
  fuzzStep("optimizer.safetensors metadata and header damaged", {
    module: TARGETS,
    target: "optimizerFile",
    cases: fc.oneof(
      fc.constantFrom(...DAMAGED_META),
      mutatedBytes(OPTIMIZER.subarray(0, HEADER_END)).map((h) =>
        new Uint8Array([...h, ...OPTIMIZER.subarray(HEADER_END)])
      ),
    ),
    request: (bytes) => ({ files: { "optimizer.safetensors": bytes } }),
    names: /optimizer\.safetensors/,
    runs: 90,
  }),
  fuzzStep("bco_state.json damaged", {
    module: TARGETS,
    target: "bcoState",
    cases: damagedJsonFile({ mean: 0.25, count: 96 }, 2),
    request: (bytes) => ({ files: { "bco_state.json": bytes } }),
    names: /bco_state\.json: /,
    runs: 30,
  }),
  fuzzStep("webdpo_manifest.json damaged, or a file it lists", {
    module: TARGETS,
    target: "manifest",
    cases: damagedManifestCases,
    request: (files) => ({ files }),
    // the manifest's errors name it (and the entry, or the JSON position); a file that differs from its entry, or
    // that it lists and is missing, is named itself
    names: /<dir>\/(webdpo_manifest\.json: |[^/:]+: (\d+ bytes, but|damaged: |cannot read this file, which))/,
    runs: 80,
  }),
]);
