/**
 * `deno task make-tiny-model`: regenerates examples/tiny-chat — the demo's data and its tiny SFT chat model —
 * from fixed seeds.
 *
 * 1. The task (demo/task.ts): "What is 37 + 5?" → "37 + 5 = 42.", the questions split into training and
 *    held-out sets; noisy SFT conversations (a share of the answers off by a little) and preference pairs
 *    (chosen correct; rejected the SFT model's own wrong answer where it has one, else off by a little, see
 *    `preferenceData.rejected`) written as JSONL to data/.
 * 2. The tokenizer (character level) and a Llama config (demo/tiny_chat.ts); the model initialised from a
 *    seed and trained with SFTTrainer on the noisy conversations (assistant turns only).
 * 3. The model and tokenizer saved with saveModel, generation_config.json, data/recipe.json (every parameter and
 *    the measured accuracies) and a model card.
 *
 * The SFT data and held-out pairs are byte-for-byte reproducible; the weights are reproducible on the same WebGPU
 * adapter (the kernels are deterministic) but not across adapters (their rounding differs and training
 * amplifies it), and so may the training pairs built from the model's own answers. SFT from a random start has a slow phase before accuracy jumps
 * (around step 300-1300 here); 800 steps at lr 3e-3 sometimes ended before it (a model near 10% accuracy, seen
 * on lavapipe and for one of five seeds on an H100), so the recipe runs 1600 steps at lr 1e-3 (all of four seeds
 * past 50% on an H100). recipe.json records where the shipped model was trained (`trainedOn`), and `--data-only` rebuilds the data files for the model already in the folder.
 *
 * usage: deno task make-tiny-model [--out DIR] [--steps N] [--recipe FILE] [--data-only]
 *
 * `--recipe FILE` reads a JSON object whose fields replace the recipe's (nested objects are merged), e.g.
 * `{"model": {"hiddenSize": 96}, "sft": {"maxSteps": 1200}}`, to try a variant without editing this file.
 */
import { init } from "../src/gpu/init.ts";
import { initModel } from "../src/models/init.ts";
import { loadModel, saveModel } from "../src/models/loader.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { SFTConfig } from "../src/sft/config.ts";
import { SFTTrainer } from "../src/sft/trainer.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { parseCommandLine, UsageError } from "../src/cli/argv.ts";
import { accuracy, answerQuestions, preferenceAccuracy } from "./measure.ts";
import {
  answerText,
  preferenceRows,
  questionText,
  sftRows,
  splitQuestions,
  type TaskOptions,
  toJsonl,
} from "./task.ts";
import {
  DEFAULT_SHAPE,
  tinyGenerationConfig,
  tinyModelConfig,
  tinySpecialTokensMap,
  tinyTokenizerConfig,
  tinyTokenizerJson,
} from "./tiny_chat.ts";

/** Every choice that determines the files. */
export const RECIPE = {
  task: {
    seed: 1234,
    minA: 10,
    maxA: 99,
    minB: 1,
    maxB: 9,
    ops: ["+"],
    heldOutFraction: 0.15,
  } satisfies TaskOptions,
  sftData: { seed: 7, noise: { carry: 0.65, other: 0.08 }, copies: 4 },
  /**
   * `rejected`: "near-misses" rejects answers off by a little, chosen at random; "own-mistakes" rejects first the
   * SFT model's own wrong greedy answer to the question, where it has one (on-policy pairs), then near misses.
   */
  preferenceData: {
    trainSeed: 11,
    testSeed: 13,
    perQuestion: 2,
    rejected: "own-mistakes" as "near-misses" | "own-mistakes",
  },
  model: { ...DEFAULT_SHAPE, initSeed: 1 },
  sft: {
    learningRate: 1e-3,
    maxSteps: 1600,
    perDeviceTrainBatchSize: 32,
    lrSchedulerType: "constant_with_warmup" as const,
    warmupSteps: 20,
    weightDecay: 0,
    seed: 42,
  },
};

export type Recipe = typeof RECIPE;

/** `base` with the fields of `over` replacing its own; nested objects are merged, unknown keys are errors. */
export function mergeRecipe<T>(base: T, over: unknown, path = "recipe"): T {
  if (over === null || typeof over !== "object" || Array.isArray(over)) {
    throw new TypeError(`${path} must be an object`);
  }
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) {
    if (!(k in out)) {
      throw new TypeError(
        `${path}.${k} is not a recipe field; the fields are ${Object.keys(out).join(", ")}`,
      );
    }
    const cur = out[k];
    const nested = cur !== null && typeof cur === "object" && !Array.isArray(cur);
    out[k] = nested ? mergeRecipe(cur, v, `${path}.${k}`) : v;
  }
  return out as T;
}

/**
 * For --data-only: how the model already in `out` was made (data/recipe.json's `trainedOn`), after checking that
 * it was made by the same recipe as far as the model is concerned (task, SFT data, model, SFT).
 */
async function previousTraining(out: string, recipe: Recipe): Promise<{ adapter: string; seconds: number }> {
  const path = `${out}/data/recipe.json`;
  let previous: Record<string, unknown> & { trainedOn?: { adapter: string; seconds: number } };
  try {
    previous = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`--data-only needs the recipe of the model in ${out}: ${(e as Error).message}`);
  }
  for (const k of ["task", "sftData", "model", "sft"] as const) {
    if (JSON.stringify(previous[k]) !== JSON.stringify(recipe[k])) {
      throw new Error(
        `--data-only: the model in ${out} was made with ${k} ${JSON.stringify(previous[k])}, not ` +
          `${JSON.stringify(recipe[k])}; retrain it (without --data-only) or use its recipe`,
      );
    }
  }
  if (!previous.trainedOn) throw new Error(`--data-only: ${path} does not say where the model was trained`);
  return previous.trainedOn;
}

function usage(): string {
  return `usage: deno task make-tiny-model [--out DIR] [--steps N] [--recipe FILE] [--data-only]

Regenerates the demo's tiny chat model and data (default folder examples/tiny-chat): synthetic arithmetic
questions, noisy SFT conversations, preference pairs (train and held-out), a character-level tokenizer, and a
${RECIPE.model.numLayers}-layer Llama SFT-trained from a seeded random initialisation (${RECIPE.sft.maxSteps} steps).
--recipe FILE replaces recipe fields with those of a JSON file (nested objects merged), e.g.
{"model": {"hiddenSize": 96}, "sft": {"maxSteps": 1200}}. --data-only keeps the model already in the folder and
rewrites the data files, measurements and model card.`;
}

async function main(argv: string[]): Promise<number> {
  let line;
  try {
    line = parseCommandLine(argv, {
      out: { kind: "string" },
      steps: { kind: "int" },
      data_only: { kind: "flag" },
      recipe: { kind: "string" },
    });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`make-tiny-model: ${e.message}\n\n${usage()}`);
    return 2;
  }
  if (line.help) {
    console.log(usage());
    return 0;
  }
  const out = line.values.out ?? new URL("../examples/tiny-chat", import.meta.url).pathname;
  let steps = line.values.steps;
  const dataOnly = line.values.data_only ?? false;
  const recipe: Recipe = line.values.recipe
    ? mergeRecipe(RECIPE, JSON.parse(await Deno.readTextFile(line.values.recipe)))
    : RECIPE;
  steps ??= recipe.sft.maxSteps;
  const t0 = performance.now();
  const info = await init();
  console.log(`adapter: ${info.adapterName}`);
  // where and how long the SFT ran: this run, or (--data-only) the run that made the model in `out`
  const trained = dataOnly
    ? await previousTraining(out, { ...recipe, sft: { ...recipe.sft, maxSteps: steps } })
    : null;

  // 1. data
  const { train, heldOut } = splitQuestions(recipe.task);
  const sft = sftRows(train, recipe.sftData);
  const ownMistakes = recipe.preferenceData.rejected === "own-mistakes";
  if (!ownMistakes && recipe.preferenceData.rejected !== "near-misses") {
    throw new TypeError(`recipe.preferenceData.rejected must be "near-misses" or "own-mistakes"`);
  }
  const dpoTest = preferenceRows(heldOut, { seed: recipe.preferenceData.testSeed, perQuestion: 1 });
  await Deno.mkdir(`${out}/data`, { recursive: true });
  await Deno.writeTextFile(`${out}/data/sft_train.jsonl`, toJsonl(sft.rows));
  await Deno.writeTextFile(`${out}/data/dpo_test.jsonl`, toJsonl(dpoTest));
  console.log(
    `data: ${train.length} training and ${heldOut.length} held-out questions; ${sft.rows.length} SFT conversations ` +
      `(${sft.wrong} answers off by a little, ${(100 * sft.wrong / sft.rows.length).toFixed(1)}%); ` +
      `${dpoTest.length} held-out preference pairs (the training pairs follow the SFT)`,
  );

  // 2. tokenizer and model
  const config = tinyModelConfig(recipe.model);
  const tokenizer = new Tokenizer(
    tinyTokenizerJson(),
    tinyTokenizerConfig(recipe.model.maxPositions),
    tinySpecialTokensMap(),
  );
  // --data-only: the model already in `out` (no training), for the data files, measurements and model card
  const model = dataOnly ? await loadModel(out) : await initModel(config, { seed: recipe.model.initSeed });
  const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
  if (!dataOnly) await supervisedFineTune(model);

  async function supervisedFineTune(model: CausalLM): Promise<void> {
    console.log(
      `model: Llama, ${recipe.model.numLayers} layers, hidden ${recipe.model.hiddenSize}, ` +
        `${nParams} parameters; SFT for ${steps} steps of ${recipe.sft.perDeviceTrainBatchSize} conversations`,
    );
    const trainer = new SFTTrainer({
      model,
      tokenizer,
      trainDataset: sft.rows as unknown as Record<string, unknown>[],
      args: new SFTConfig({
        ...recipe.sft,
        maxSteps: steps,
        outputDir: out,
        loggingSteps: 25,
        maxLength: recipe.model.maxPositions,
      }),
    });
    // progress: held-out exact-answer accuracy every 100 steps
    trainer.callbacks.push({
      onStepEnd: async (s) => {
        if (s.globalStep % 100 !== 0 || s.globalStep === steps) return;
        const acc = accuracy(await answerQuestions(model, tokenizer, heldOut));
        console.log(`step ${s.globalStep}: held-out exact-answer accuracy ${(100 * acc).toFixed(1)}%`);
      },
    });
    await trainer.train();
    trainer.dispose();
    await saveModel(model, out, { tokenizer });
    await Deno.writeTextFile(
      `${out}/generation_config.json`,
      JSON.stringify(tinyGenerationConfig(), null, 2) + "\n",
    );
  }

  // 3. measurements, the training pairs (with the model's own mistakes), recipe and model card
  const answers = await answerQuestions(model, tokenizer, heldOut);
  const trainAnswers = await answerQuestions(model, tokenizer, train);
  let mistakes: Map<string, number> | undefined;
  if (ownMistakes) {
    mistakes = new Map();
    for (const a of trainAnswers) {
      if (!a.correct && a.value !== null) mistakes.set(questionText(a.question), a.value);
    }
  }
  const dpoTrain = preferenceRows(train, {
    seed: recipe.preferenceData.trainSeed,
    perQuestion: recipe.preferenceData.perQuestion,
    mistakes,
  });
  await Deno.writeTextFile(`${out}/data/dpo_train.jsonl`, toJsonl(dpoTrain));
  console.log(
    `training preference pairs: ${dpoTrain.length}` +
      (mistakes
        ? `, rejecting first the SFT model's own wrong answer (${mistakes.size} of ${train.length} questions)`
        : ""),
  );
  const measured = {
    heldOutExactAccuracy: accuracy(answers),
    heldOutPreferenceAccuracy: await preferenceAccuracy(model, tokenizer, dpoTest),
    trainExactAccuracy: accuracy(trainAnswers),
  };
  const seconds = (performance.now() - t0) / 1000;
  await Deno.writeTextFile(
    `${out}/data/recipe.json`,
    JSON.stringify(
      {
        ...recipe,
        sft: { ...recipe.sft, maxSteps: steps },
        counts: {
          trainQuestions: train.length,
          heldOutQuestions: heldOut.length,
          sftConversations: sft.rows.length,
          sftWrongAnswers: sft.wrong,
          dpoTrainPairs: dpoTrain.length,
          dpoTestPairs: dpoTest.length,
          parameters: nParams,
        },
        measured: { ...measured, adapter: info.adapterName },
        trainedOn: trained ?? { adapter: info.adapterName, seconds: Math.round(seconds) },
      },
      null,
      2,
    ) + "\n",
  );
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const examples = answers.slice(0, 5).map((a) =>
    `| ${questionText(a.question)} | ${a.text} | ${answerText(a.question)} |`
  );
  await Deno.writeTextFile(
    `${out}/README.md`,
    `# tiny-chat

A tiny Llama chat model made by webdpo for \`deno task demo\`: ${nParams} parameters (${recipe.model.numLayers} layers,
hidden ${recipe.model.hiddenSize}), a character-level tokenizer with a ChatML-style chat template, trained from a
seeded random initialisation with webdpo's \`SFTTrainer\` on deliberately noisy answers to short arithmetic
questions (${
      pct(sft.wrong / sft.rows.length)
    } of the answers off by a little, most of them one too low where the sum needs a carry), on
${(trained ?? { adapter: info.adapterName }).adapter}. Regenerate it with \`deno task make-tiny-model\` (every
parameter is in data/recipe.json).

Measured after SFT, on ${heldOut.length} held-out questions that no training file contains:
exact-answer accuracy of greedy answers ${pct(measured.heldOutExactAccuracy)}, preference accuracy
(log p(correct) > log p(a plausible wrong answer)) ${
      pct(measured.heldOutPreferenceAccuracy)
    }; on the training questions
${pct(measured.trainExactAccuracy)}.

| question | the model's answer | correct |
| --- | --- | --- |
${examples.join("\n")}

Files: config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json,
special_tokens_map.json; data/sft_train.jsonl (SFT conversations), data/dpo_train.jsonl and data/dpo_test.jsonl
(preference pairs in TRL's conversational format: prompt, chosen, rejected; disjoint questions). The training
pairs reject first the SFT model's own wrong answer to the question where it has one (on-policy pairs, here
${
      ownMistakes
        ? "used"
        : "not used"
    }), then answers off by one, two or ten; the held-out pairs reject an answer
off by one, two or ten.
`,
  );
  console.log(
    `SFT model: held-out exact-answer accuracy ${pct(measured.heldOutExactAccuracy)}, preference accuracy ` +
      `${pct(measured.heldOutPreferenceAccuracy)}; training questions ${pct(measured.trainExactAccuracy)}`,
  );
  console.log(`wrote ${out} in ${seconds.toFixed(0)} s`);
  model.dispose();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
