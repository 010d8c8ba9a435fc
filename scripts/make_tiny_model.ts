/**
 * `deno task make-tiny-model`: regenerates examples/tiny-chat — the demo's data and its tiny SFT chat model —
 * from fixed seeds.
 *
 * 1. The task (src/demo/task.ts): "What is 37 + 5?" → "37 + 5 = 42.", the questions split into training and
 *    held-out sets; noisy SFT conversations (a share of the answers off by a little) and preference pairs
 *    (chosen correct, rejected off by a little) written as JSONL to data/.
 * 2. The tokenizer (character level) and a Llama config (src/demo/tiny_chat.ts); the model initialised from a
 *    seed and trained with SFTTrainer on the noisy conversations (assistant turns only).
 * 3. The model and tokenizer saved with saveModel, generation_config.json, data/recipe.json (every parameter and
 *    the measured accuracies) and a model card.
 *
 * The data files are byte-for-byte reproducible; the weights are reproducible on the same WebGPU adapter (the
 * kernels are deterministic), and differ in the last bits across adapters.
 *
 * usage: deno task make-tiny-model [--out DIR] [--steps N]
 */
import { init } from "../src/gpu/init.ts";
import { initModel } from "../src/models/init.ts";
import { saveModel } from "../src/models/loader.ts";
import { SFTConfig } from "../src/sft/config.ts";
import { SFTTrainer } from "../src/sft/trainer.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { accuracy, answerQuestions, preferenceAccuracy } from "../src/demo/measure.ts";
import {
  answerText,
  preferenceRows,
  questionText,
  sftRows,
  splitQuestions,
  type TaskOptions,
  toJsonl,
} from "../src/demo/task.ts";
import {
  DEFAULT_SHAPE,
  tinyGenerationConfig,
  tinyModelConfig,
  tinySpecialTokensMap,
  tinyTokenizerConfig,
  tinyTokenizerJson,
} from "../src/demo/tiny_chat.ts";

/** Every choice that determines the files. */
export const RECIPE = {
  task: {
    seed: 1234,
    minA: 10,
    maxA: 99,
    minB: 3,
    maxB: 7,
    ops: ["+"],
    heldOutFraction: 0.15,
  } satisfies TaskOptions,
  sftData: { seed: 7, noise: { carry: 0.65, other: 0.08 }, copies: 4 },
  preferenceData: { trainSeed: 11, testSeed: 13, perQuestion: 6 },
  model: { ...DEFAULT_SHAPE, initSeed: 1 },
  sft: {
    learningRate: 3e-3,
    maxSteps: 800,
    perDeviceTrainBatchSize: 32,
    lrSchedulerType: "constant_with_warmup" as const,
    warmupSteps: 20,
    weightDecay: 0,
    seed: 42,
  },
};

function usage(): string {
  return `usage: deno task make-tiny-model [--out DIR] [--steps N]

Regenerates the demo's tiny chat model and data (default folder examples/tiny-chat): synthetic arithmetic
questions, noisy SFT conversations, preference pairs (train and held-out), a character-level tokenizer, and a
${RECIPE.model.numLayers}-layer Llama SFT-trained from a seeded random initialisation (${RECIPE.sft.maxSteps} steps).`;
}

async function main(argv: string[]): Promise<number> {
  let out = new URL("../examples/tiny-chat", import.meta.url).pathname;
  let steps = RECIPE.sft.maxSteps;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h" || a === "--help") {
      console.log(usage());
      return 0;
    } else if (a === "--out" && argv[i + 1]) out = argv[++i];
    else if (a === "--steps" && argv[i + 1] && Number.isInteger(Number(argv[i + 1]))) {
      steps = Number(argv[++i]);
    } else {
      console.error(`make-tiny-model: unexpected argument "${a}"\n\n${usage()}`);
      return 2;
    }
  }
  const t0 = performance.now();
  const info = await init();
  console.log(`adapter: ${info.adapterName}`);

  // 1. data
  const { train, heldOut } = splitQuestions(RECIPE.task);
  const sft = sftRows(train, RECIPE.sftData);
  const dpoTrain = preferenceRows(train, {
    seed: RECIPE.preferenceData.trainSeed,
    perQuestion: RECIPE.preferenceData.perQuestion,
  });
  const dpoTest = preferenceRows(heldOut, { seed: RECIPE.preferenceData.testSeed, perQuestion: 1 });
  await Deno.mkdir(`${out}/data`, { recursive: true });
  await Deno.writeTextFile(`${out}/data/sft_train.jsonl`, toJsonl(sft.rows));
  await Deno.writeTextFile(`${out}/data/dpo_train.jsonl`, toJsonl(dpoTrain));
  await Deno.writeTextFile(`${out}/data/dpo_test.jsonl`, toJsonl(dpoTest));
  console.log(
    `data: ${train.length} training and ${heldOut.length} held-out questions; ${sft.rows.length} SFT conversations ` +
      `(${sft.wrong} answers off by a little, ${(100 * sft.wrong / sft.rows.length).toFixed(1)}%); ` +
      `${dpoTrain.length} training and ${dpoTest.length} held-out preference pairs`,
  );

  // 2. tokenizer and model
  const config = tinyModelConfig(RECIPE.model);
  const tokenizer = new Tokenizer(
    tinyTokenizerJson(),
    tinyTokenizerConfig(RECIPE.model.maxPositions),
    tinySpecialTokensMap(),
  );
  const model = await initModel(config, { seed: RECIPE.model.initSeed });
  const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
  console.log(
    `model: Llama, ${RECIPE.model.numLayers} layers, hidden ${RECIPE.model.hiddenSize}, ` +
      `${nParams} parameters; SFT for ${steps} steps of ${RECIPE.sft.perDeviceTrainBatchSize} conversations`,
  );
  const trainer = new SFTTrainer({
    model,
    tokenizer,
    trainDataset: sft.rows as unknown as Record<string, unknown>[],
    args: new SFTConfig({
      ...RECIPE.sft,
      maxSteps: steps,
      outputDir: out,
      loggingSteps: 25,
      maxLength: RECIPE.model.maxPositions,
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

  // 3. files and measurements
  await saveModel(model, out, { tokenizer });
  await Deno.writeTextFile(
    `${out}/generation_config.json`,
    JSON.stringify(tinyGenerationConfig(), null, 2) + "\n",
  );
  const answers = await answerQuestions(model, tokenizer, heldOut);
  const trainAnswers = await answerQuestions(model, tokenizer, train);
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
        ...RECIPE,
        sft: { ...RECIPE.sft, maxSteps: steps },
        counts: {
          trainQuestions: train.length,
          heldOutQuestions: heldOut.length,
          sftConversations: sft.rows.length,
          sftWrongAnswers: sft.wrong,
          dpoTrainPairs: dpoTrain.length,
          dpoTestPairs: dpoTest.length,
          parameters: nParams,
        },
        measured: { ...measured, adapter: info.adapterName, seconds: Math.round(seconds) },
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

A tiny Llama chat model made by webdpo for \`deno task demo\`: ${nParams} parameters (${RECIPE.model.numLayers} layers,
hidden ${RECIPE.model.hiddenSize}), a character-level tokenizer with a ChatML-style chat template, trained from a
seeded random initialisation with webdpo's \`SFTTrainer\` on deliberately noisy answers to short arithmetic
questions (${
      pct(sft.wrong / sft.rows.length)
    } of the answers off by a little, most of them one too low where the sum needs a carry). Regenerate it with
\`deno task make-tiny-model\` (every parameter is in data/recipe.json).

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
(preference pairs in TRL's conversational format: prompt, chosen, rejected; disjoint questions).
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
