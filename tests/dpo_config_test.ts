/**
 * DPOConfig: TRL's defaults, the snake/camel mapping, every validation error and warning, unknown-key suggestions.
 * Pure TypeScript (no GPU).
 */
import assert from "node:assert/strict";
import {
  camelToSnake,
  ConfigError,
  DPOConfig,
  type DPOConfigInit,
  intervalSteps,
  nearestKey,
  resetPrintedConfigWarnings,
  snakeToCamel,
} from "../src/dpo/config.ts";
import { CONFIG_FIELDS, FIELDS, LOSS_TYPE_NAMES } from "../src/dpo/config_table.ts";
import {
  DPO_LOSS_TYPES,
  type DpoLossConfig,
  resetDpoLossWarnings,
  resolveDpoLossConfig,
} from "../src/dpo/loss.ts";

const quiet = { printWarnings: false };
const make = (o: Partial<DPOConfigInit> = {}) => new DPOConfig({ outputDir: "out", ...o }, quiet);

/** Asserts that `fn` throws a ConfigError whose message matches every pattern. */
function rejects(fn: () => unknown, ...patterns: RegExp[]): string {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
  for (const p of patterns) assert.match(err.message, p);
  return err.message;
}

Deno.test("defaults are TRL v0.9's DPOConfig / TrainingArguments values", () => {
  const c = make();
  // From the `trl.DPOConfig` signature of the v0.9 documentation (DPO part).
  const dpo: Record<string, unknown> = {
    beta: 0.1,
    label_smoothing: 0,
    loss_type: "sigmoid",
    label_pad_token_id: -100,
    truncation_mode: "keep_end",
    max_length: null,
    max_prompt_length: null,
    max_target_length: null,
    is_encoder_decoder: null,
    disable_dropout: true,
    generate_during_eval: false,
    precompute_ref_log_probs: false,
    dataset_num_proc: null,
    model_init_kwargs: null,
    ref_model_init_kwargs: null,
    model_adapter_name: null,
    ref_adapter_name: null,
    reference_free: false,
    force_use_ref_model: false,
    sync_ref_model: false,
    ref_model_mixup_alpha: 0.9,
    ref_model_sync_steps: 64,
    rpo_alpha: null,
  };
  // The inherited TrainingArguments a run uses.
  const training: Record<string, unknown> = {
    seed: 42,
    data_seed: null,
    per_device_train_batch_size: 8,
    per_device_eval_batch_size: 8,
    gradient_accumulation_steps: 1,
    learning_rate: 5e-5,
    weight_decay: 0,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    max_grad_norm: 1,
    num_train_epochs: 3,
    max_steps: -1,
    lr_scheduler_type: "linear",
    lr_scheduler_kwargs: {},
    warmup_ratio: 0,
    warmup_steps: 0,
    logging_steps: 500,
    logging_first_step: false,
    eval_strategy: "no",
    eval_steps: null,
    save_strategy: "steps",
    save_steps: 500,
    save_total_limit: null,
    resume_from_checkpoint: null,
    report_to: null,
    disable_tqdm: null,
    gradient_checkpointing: false,
  };
  // SPEC.md's later options, padding_value: unset = the tokenizer's pad (the v0.9.4 signature shows 0), and
  // padding_free (TRL 0.17+: false, FlashAttention only; webdpo's attention separates packed rows itself), and
  // webdpo's own prefix_sharing (a pair's common prompt runs once inside the packed batch).
  const later: Record<string, unknown> = {
    padding_value: null,
    padding_free: true,
    prefix_sharing: true,
    loss_weights: null,
    f_divergence_type: "reverse_kl",
    f_alpha_divergence_coef: 0.5,
    use_weighting: false,
    ld_alpha: null,
    discopop_tau: 0.05,
    precompute_ref_batch_size: null,
  };
  const snake = c.toSnakeCase();
  for (const [k, v] of Object.entries({ ...dpo, ...training, ...later })) {
    assert.deepEqual(snake[k], v, k);
    assert.deepEqual((c as unknown as Record<string, unknown>)[snakeToCamel(k)], v, k);
  }
  // Every field is covered above (plus output_dir, which is required).
  assert.deepEqual(
    Object.keys(snake).sort(),
    [...Object.keys({ ...dpo, ...training, ...later }), "output_dir"].sort(),
  );
  assert.equal(c.outputDir, "out");
  assert.deepEqual(c.warnings, []);
});

Deno.test("snake_case ↔ camelCase mapping is mechanical and round-trips for every key", () => {
  assert.equal(snakeToCamel("per_device_train_batch_size"), "perDeviceTrainBatchSize");
  assert.equal(snakeToCamel("adam_beta1"), "adamBeta1");
  assert.equal(snakeToCamel("f_divergence_type"), "fDivergenceType");
  assert.equal(camelToSnake("fAlphaDivergenceCoef"), "f_alpha_divergence_coef");
  assert.equal(camelToSnake("adamBeta2"), "adam_beta2");
  const names = new Set<string>();
  for (const f of FIELDS) {
    assert.equal(f.camel, snakeToCamel(f.name));
    assert.equal(camelToSnake(f.camel), f.name);
    assert.match(f.name, /^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$/);
    assert.ok(!names.has(f.name), `duplicate ${f.name}`);
    names.add(f.name);
    assert.ok(f.doc.length > 10 && !f.doc.includes("\n"), `${f.name}: one line of documentation`);
  }
  // The constructed object carries exactly the table's DPOConfig fields (plus `warnings`).
  const keys = Object.keys(make()).filter((k) => k !== "warnings").sort();
  assert.deepEqual(keys, CONFIG_FIELDS.map((f) => f.camel).sort());
});

Deno.test("toSnakeCase / fromSnakeCase round trip, and omitDefaults", () => {
  const c = make({
    beta: 0.25,
    lossType: ["sigmoid", "sft"],
    lossWeights: [1, 0.5],
    lrSchedulerType: "cosine_with_min_lr",
    lrSchedulerKwargs: { min_lr_rate: 0.1 },
    maxLength: 256,
    maxPromptLength: 64,
    reportTo: ["jsonl"],
    resumeFromCheckpoint: "out/checkpoint-20",
    modelInitKwargs: { torch_dtype: "float32", nested: { a: [1, 2] } },
    evalStrategy: "steps",
    loggingSteps: 0.25,
  });
  const snake = c.toSnakeCase();
  assert.equal(snake.loss_type instanceof Array, true);
  assert.deepEqual(snake.lr_scheduler_kwargs, { min_lr_rate: 0.1 });
  assert.equal(snake.eval_steps, 0.25, "eval_steps falls back to logging_steps");
  const back = DPOConfig.fromSnakeCase(JSON.parse(JSON.stringify(snake)), quiet);
  assert.deepEqual(back.toSnakeCase(), snake);
  assert.deepEqual(back.toCamelCase(), c.toCamelCase());
  // The output is a copy: changing it changes nothing in the config.
  const copy = c.toSnakeCase();
  (copy.loss_weights as number[])[0] = 9;
  assert.deepEqual(c.lossWeights, [1, 0.5]);

  const minimal = c.toSnakeCase({ omitDefaults: true });
  assert.deepEqual(Object.keys(minimal).sort(), [
    "beta",
    "eval_steps",
    "eval_strategy",
    "logging_steps",
    "loss_type",
    "loss_weights",
    "lr_scheduler_kwargs",
    "lr_scheduler_type",
    "max_length",
    "max_prompt_length",
    "model_init_kwargs",
    "output_dir",
    "report_to",
    "resume_from_checkpoint",
  ]);
  assert.deepEqual(DPOConfig.fromSnakeCase(minimal, quiet).toSnakeCase(), snake);
});

Deno.test("the config is frozen; with() makes a validated copy", () => {
  const c = make({ beta: 0.2 });
  assert.throws(() => {
    (c as unknown as { beta: number }).beta = 3;
  }, TypeError);
  assert.throws(() => {
    (c.lrSchedulerKwargs as Record<string, unknown>).num_cycles = 1;
  }, TypeError);
  const d = c.with({ lossType: "ipo" });
  assert.equal(d.beta, 0.2);
  assert.equal(d.lossType, "ipo");
  assert.equal(c.lossType, "sigmoid");
  rejects(() => c.with({ beta: -1 }), /beta must be > 0; got -1/);
});

Deno.test("loss types: every SPEC.md type and the aot_unpaired alias; unknown ones list the valid names", () => {
  for (const t of LOSS_TYPE_NAMES) {
    const eps = t === "exo_pair" ? 1e-3 : 0;
    const c = make({ lossType: t, labelSmoothing: eps });
    assert.deepEqual(c.lossTypes, [t === "aot_unpaired" ? "aot_pair" : t]);
  }
  const msg = rejects(
    () => make({ lossType: "sigmod" as never }),
    /lossType must be one of/,
    /did you mean 'sigmoid'/,
  );
  for (const t of LOSS_TYPE_NAMES) assert.ok(msg.includes(t), `${t} listed`);
  assert.match(msg, /aot_unpaired is another name for aot_pair/);
  rejects(() => make({ lossType: ["sigmoid", "dpo"] as never }), /lossType\[1\] must be one of/);
  rejects(() => make({ lossType: [] }), /empty list/);
  rejects(() => make({ lossType: ["aot_pair", "aot_unpaired"] }), /'aot_pair' more than once/);
  assert.deepEqual(make({ lossType: ["sigmoid", "aot_unpaired"] }).lossTypes, ["sigmoid", "aot_pair"]);
});

Deno.test("label_smoothing: [0, 0.5), robust's own reason, exo_pair needs > 0", () => {
  rejects(
    () => make({ lossType: "robust", labelSmoothing: 0.5 }),
    /'robust' needs labelSmoothing in \[0, 0\.5\)/,
  );
  rejects(() => make({ lossType: ["sigmoid", "robust"], labelSmoothing: -0.1 }), /'robust'.*\[0, 0\.5\)/);
  rejects(() => make({ labelSmoothing: -0.01 }), /labelSmoothing must be ≥ 0/);
  rejects(() => make({ labelSmoothing: 0.5 }), /labelSmoothing must be < 0\.5/);
  rejects(() => make({ labelSmoothing: "0.1" as never }), /finite number in \[0, 0\.5\)/);
  assert.equal(make({ lossType: "robust", labelSmoothing: 0.49 }).labelSmoothing, 0.49);
  rejects(() => make({ lossType: "exo_pair" }), /'exo_pair' needs labelSmoothing > 0/, /1e-3/);
  rejects(() => make({ lossType: ["sigmoid", "exo_pair"], labelSmoothing: 0 }), /1e-3/);
});

Deno.test("loss combinations: loss_weights length, use_weighting with aot, reference strategies", () => {
  rejects(
    () => make({ lossType: ["sigmoid", "sft"], lossWeights: [1] }),
    /lossWeights has 1 value\(s\) but lossType has 2 \(sigmoid, sft\)/,
    /one weight per loss type/,
  );
  rejects(() => make({ lossWeights: [1, 2] }), /lossType has 1/);
  rejects(() => make({ lossWeights: [-1] }), /lossWeights\[0\] must be a finite number ≥ 0/);
  assert.deepEqual(make({ lossType: ["sigmoid", "sft"], lossWeights: [1, 0.5] }).lossWeights, [1, 0.5]);
  for (const t of ["aot", "aot_pair", "aot_unpaired"] as const) {
    rejects(
      () => make({ lossType: t, useWeighting: true }),
      /useWeighting does not work with loss_type 'aot'/,
    );
  }
  assert.equal(make({ lossType: "ipo", useWeighting: true }).useWeighting, true);
  rejects(
    () => make({ syncRefModel: true, precomputeRefLogProbs: true }),
    /syncRefModel updates the reference.*cannot be precomputed/,
  );
  rejects(() => make({ syncRefModel: true, referenceFree: true }), /needs a reference model/);
  rejects(() => make({ ldAlpha: 1.5 }), /ldAlpha must be in \[0, 1\]; got 1\.5/);
  rejects(() => make({ ldAlpha: -0.1 }), /ldAlpha must be in \[0, 1\]/);
  assert.equal(make({ ldAlpha: 0.5 }).ldAlpha, 0.5);
  rejects(() => make({ refModelMixupAlpha: 1.1 }), /refModelMixupAlpha must be in \[0, 1\]/);
  rejects(() => make({ discopopTau: 0 }), /discopopTau must be > 0/);
  rejects(() => make({ rpoAlpha: -1 }), /rpoAlpha must be ≥ 0/);
  rejects(
    () => make({ fDivergenceType: "kl" as never }),
    /fDivergenceType must be one of reverse_kl, forward_kl/,
  );
});

Deno.test("beta, encoder-decoder keys and truncation lengths", () => {
  rejects(() => make({ beta: 0 }), /beta must be > 0; got 0/);
  rejects(() => make({ beta: -0.1 }), /beta must be > 0/);
  rejects(() => make({ beta: NaN }), /beta must be a finite number > 0/);
  rejects(() => make({ beta: null as never }), /beta cannot be null \(default 0\.1\)/);
  rejects(() => make({ maxTargetLength: 128 }), /encoder-decoder models, which webdpo does not support yet/);
  rejects(() => make({ isEncoderDecoder: true }), /encoder-decoder models are not supported yet/);
  assert.equal(make({ isEncoderDecoder: false }).isEncoderDecoder, false);
  rejects(
    () => make({ maxLength: 256, maxPromptLength: 256 }),
    /maxPromptLength \(256\) must be less than maxLength/,
  );
  rejects(
    () => make({ maxLength: 100 }),
    /maxPromptLength \(128, the default\) must be less than maxLength \(100\)/,
  );
  rejects(() => make({ maxLength: 0 }), /maxLength must be an integer ≥ 1; got 0/);
  rejects(() => make({ maxLength: 12.5 }), /maxLength must be an integer ≥ 1; got 12\.5/);
  rejects(
    () => make({ truncationMode: "keep-end" as never }),
    /keep_end, keep_start/,
    /did you mean 'keep_end'/,
  );
  rejects(() => make({ paddingValue: -1 }), /paddingValue must be an integer ≥ 0/);
});

Deno.test("training arguments: batch sizes, steps, warmup, seeds, schedules, report_to", () => {
  for (
    const k of ["perDeviceTrainBatchSize", "perDeviceEvalBatchSize", "gradientAccumulationSteps"] as const
  ) {
    rejects(() => make({ [k]: 0 }), new RegExp(`${k} must be an integer ≥ 1; got 0`));
    rejects(() => make({ [k]: 1.5 }), new RegExp(`${k} must be an integer ≥ 1; got 1\\.5`));
    rejects(() => make({ [k]: "8" as never }), new RegExp(`${k} must be an integer ≥ 1; got '8'`));
  }
  rejects(() => make({ maxSteps: 0 }), /maxSteps must be -1 \(use numTrainEpochs\) or ≥ 1; got 0/);
  rejects(() => make({ maxSteps: -2 }), /maxSteps must be an integer ≥ -1/);
  assert.equal(make({ maxSteps: 10 }).maxSteps, 10);
  rejects(() => make({ numTrainEpochs: 0 }), /numTrainEpochs must be > 0/);
  assert.equal(make({ numTrainEpochs: 0.5 }).numTrainEpochs, 0.5);
  rejects(() => make({ warmupRatio: 1.5 }), /warmupRatio must be in \[0, 1\]; got 1\.5/);
  rejects(() => make({ warmupRatio: -0.1 }), /warmupRatio must be in \[0, 1\]/);
  rejects(() => make({ warmupSteps: -1 }), /warmupSteps must be an integer ≥ 0/);
  rejects(() => make({ seed: -1 }), /seed must be an integer ≥ 0/);
  rejects(() => make({ learningRate: -1e-5 }), /learningRate must be ≥ 0/);
  rejects(() => make({ adamBeta2: 1 }), /adamBeta2 must be in \[0, 1\); got 1/);
  rejects(() => make({ adamEpsilon: 0 }), /adamEpsilon must be > 0/);
  rejects(() => make({ saveTotalLimit: 0 }), /saveTotalLimit must be an integer ≥ 1/);

  rejects(
    () => make({ lrSchedulerType: "cosine_with_min_lr" }),
    /needs exactly one of min_lr and min_lr_rate/,
  );
  rejects(
    () =>
      make({ lrSchedulerType: "cosine_with_min_lr", lrSchedulerKwargs: { min_lr: 1e-6, min_lr_rate: 0.1 } }),
    /exactly one of min_lr and min_lr_rate/,
  );
  assert.deepEqual(
    make({ lrSchedulerType: "cosine_with_min_lr", lrSchedulerKwargs: { min_lr: 1e-6 } }).lrSchedulerKwargs,
    { min_lr: 1e-6 },
  );
  rejects(
    () => make({ lrSchedulerKwargs: { num_cycles: 1 } }),
    /'num_cycles' is not an option of the 'linear'/,
  );
  rejects(
    () => make({ lrSchedulerType: "cosine", lrSchedulerKwargs: { num_cycle: 1 } }),
    /did you mean 'num_cycles'/,
  );
  rejects(
    () => make({ lrSchedulerType: "cosine_with_min_lr", lrSchedulerKwargs: { min_lr_rate: 2 } }),
    /min_lr_rate must be in \[0, 1\]/,
  );
  rejects(() => make({ lrSchedulerType: "cosine", lrSchedulerKwargs: { num_cycles: "a" } }), /finite number/);
  rejects(() => make({ lrSchedulerType: "polynomial" as never }), /linear, cosine, constant/);
  rejects(() => make({ lrSchedulerKwargs: null as never }), /lrSchedulerKwargs cannot be null/);

  assert.deepEqual(make({ reportTo: "none" as never }).reportTo, ["none"]);
  assert.deepEqual(make({ reportTo: ["jsonl"] }).reportTo, ["jsonl"]);
  rejects(
    () => make({ reportTo: ["tensorboard"] as never }),
    /reportTo\[0\] must be one of none, all, jsonl/,
  );
  rejects(() => make({ reportTo: ["none", "jsonl"] }), /'none' cannot be combined/);

  assert.equal(make({ resumeFromCheckpoint: true }).resumeFromCheckpoint, true);
  assert.equal(make({ resumeFromCheckpoint: "out/checkpoint-3" }).resumeFromCheckpoint, "out/checkpoint-3");
  rejects(() => make({ resumeFromCheckpoint: "" }), /true, false or a checkpoint folder/);
  rejects(() => make({ modelInitKwargs: [1] as never }), /modelInitKwargs must be a mapping/);
  rejects(() => make({ outputDir: "" }), /outputDir must be a non-empty string/);
  rejects(() => new DPOConfig({} as DPOConfigInit, quiet), /outputDir is required/);
  rejects(() => new DPOConfig(null as never, quiet), /expects an object/);
});

Deno.test("logging/eval/save steps: integers ≥ 1 or fractions of the run; eval_steps falls back to logging_steps", () => {
  for (const k of ["loggingSteps", "saveSteps", "evalSteps"] as const) {
    rejects(
      () => make({ [k]: 0 }),
      new RegExp(`${k} must be a whole number of steps ≥ 1, or a fraction in \\(0, 1\\)`),
    );
    rejects(() => make({ [k]: 1.5 }), new RegExp(`${k} must be a whole number`));
    rejects(() => make({ [k]: -3 }), new RegExp(`${k} must be a whole number`));
    assert.equal(make({ [k]: 0.1, evalStrategy: "steps" })[k], 0.1);
    assert.equal(make({ [k]: 7, evalStrategy: "steps" })[k], 7);
  }
  assert.equal(make({ evalStrategy: "steps" }).evalSteps, 500);
  assert.equal(make({ evalStrategy: "steps", loggingSteps: 10 }).evalSteps, 10);
  assert.equal(make({ evalStrategy: "steps", loggingSteps: 10, evalSteps: 3 }).evalSteps, 3);
  assert.equal(make({ evalStrategy: "epoch" }).evalSteps, null);
  rejects(() => make({ evalStrategy: "step" as never }), /no, steps, epoch/, /did you mean 'steps'/);
  assert.equal(intervalSteps(0.1, 95), 10);
  assert.equal(intervalSteps(0.5, 1), 1);
  assert.equal(intervalSteps(25, 1000), 25);
  assert.throws(() => intervalSteps(0.1, 0), RangeError);
});

Deno.test("unknown keys name the nearest valid key", () => {
  rejects(() => make({ betaa: 0.1 } as never), /unknown key 'betaa'; did you mean 'beta'\?/);
  rejects(() => make({ learningRte: 1e-5 } as never), /did you mean 'learningRate'\?/);
  rejects(() => make({ LearningRate: 1e-5 } as never), /did you mean 'learningRate'\?/);
  rejects(() => make({ lossTyp: "ipo" } as never), /did you mean 'lossType'\?/);
  rejects(
    () => make({ loss_type: "ipo" } as never),
    /'loss_type' is a snake_case name: the constructor takes camelCase 'lossType'/,
  );
  rejects(() => make({ modelNameOrPath: "m" } as never), /script key of `webdpo train`/);
  rejects(() => make({ bf16: true } as never), /'bf16': webdpo computes in float32/);
  rejects(() => make({ zzzzqqqqxxxx: 1 } as never), /no key is close/);
  const two = rejects(() => make({ betaa: 1, warmup_step: 1 } as never), /2 unknown keys/);
  assert.match(two, /'warmup_step'; did you mean 'warmupSteps'/);
  // snake_case input names snake_case keys.
  rejects(
    () => DPOConfig.fromSnakeCase({ output_dir: "o", learning_rte: 1 }, quiet),
    /did you mean 'learning_rate'\?/,
  );
  rejects(
    () => DPOConfig.fromSnakeCase({ output_dir: "o", lossType: "ipo" }, quiet),
    /'lossType' is a camelCase name: snake_case options use 'loss_type'/,
  );
  rejects(
    () => DPOConfig.fromSnakeCase({ output_dir: "o", loss_type: ["sigmoid"], loss_weights: [1, 2] }, quiet),
    /loss_weights has 2 value\(s\) but loss_type has 1/,
  );
  rejects(() => DPOConfig.fromSnakeCase({ beta: 0.1 }, quiet), /output_dir is required/);
  assert.equal(
    nearestKey("per_device_batch_size", ["per_device_train_batch_size", "seed"]),
    "per_device_train_batch_size",
  );
  assert.equal(nearestKey("qqqqqqqq", ["beta", "seed"]), null);
});

Deno.test("warnings: collected on the config and printed once each", () => {
  const hinge = make({ lossType: ["sigmoid", "hinge"], labelSmoothing: 0.1 });
  assert.equal(hinge.warnings.length, 1);
  assert.match(hinge.warnings[0], /labelSmoothing 0\.1 is not used by loss_type 'hinge'/);
  assert.deepEqual(make({ lossType: "aot_unpaired", labelSmoothing: 0.1 }).warnings, []);
  assert.match(make({ lossType: "kto_pair" }).warnings.join("\n"), /unpaired KTO formulation.*preferable/);
  assert.match(make({ fAlphaDivergenceCoef: 0.3 }).warnings.join(), /fAlphaDivergenceCoef has no effect/);
  assert.deepEqual(make({ fAlphaDivergenceCoef: 0.3, fDivergenceType: "alpha_divergence" }).warnings, []);
  assert.match(make({ discopopTau: 0.1 }).warnings.join(), /discopopTau has no effect/);
  assert.match(
    make({ refModelSyncSteps: 8 }).warnings.join(),
    /refModelSyncSteps has no effect: syncRefModel is off/,
  );
  assert.match(
    make({ warmupSteps: 10, warmupRatio: 0.1 }).warnings.join(),
    /warmupSteps \(10\) overrides warmupRatio/,
  );
  assert.match(make({ generateDuringEval: true }).warnings.join(), /generateDuringEval has no effect/);
  assert.match(
    make({ precomputeRefLogProbs: true, referenceFree: true }).warnings.join(),
    /precomputeRefLogProbs has no effect/,
  );
  assert.match(make({ maxSteps: 5, numTrainEpochs: 1 }).warnings.join(), /numTrainEpochs has no effect/);
  // Writing a default value explicitly (a saved config read back) warns about nothing.
  assert.deepEqual(DPOConfig.fromSnakeCase(make().toSnakeCase(), quiet).warnings, []);

  const printed: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    resetPrintedConfigWarnings();
    new DPOConfig({ outputDir: "o", lossType: "hinge", labelSmoothing: 0.2 });
    new DPOConfig({ outputDir: "o", lossType: "hinge", labelSmoothing: 0.2 });
    new DPOConfig({ outputDir: "o", lossType: "hinge", labelSmoothing: 0.2 }, { printWarnings: false });
    new DPOConfig({ outputDir: "o" });
  } finally {
    console.warn = orig;
    resetPrintedConfigWarnings();
  }
  assert.deepEqual(printed, [
    "webdpo: labelSmoothing 0.2 is not used by loss_type 'hinge' (only sigmoid, robust, exo_pair, aot, aot_pair use it)",
  ]);
});

Deno.test("keysUnknownToTrl names the keys a given TRL release would reject", () => {
  const c = make({ ldAlpha: 0.5, rpoAlpha: 1, reportTo: ["jsonl"], lossWeights: [1] });
  assert.deepEqual(c.keysUnknownToTrl("0.9").sort(), ["ld_alpha", "loss_weights", "report_to"]);
  assert.deepEqual(c.keysUnknownToTrl("0.20").sort(), ["report_to"]);
  assert.deepEqual(c.keysUnknownToTrl("1.0").sort(), ["report_to", "rpo_alpha"]);
  assert.deepEqual(make().keysUnknownToTrl("0.9"), []);
});

Deno.test("DPOConfig and dpoLoss's own validation agree (a DPOConfig is a valid dpoLoss config)", () => {
  const orig = console.warn;
  console.warn = () => {};
  try {
    const accepted: Partial<DPOConfigInit>[] = [
      {},
      { lossType: "robust", labelSmoothing: 0.3 },
      { lossType: "exo_pair", labelSmoothing: 1e-3 },
      { lossType: ["sigmoid", "sft"], lossWeights: [1, 0.5], rpoAlpha: 0.5 },
      { lossType: "aot_unpaired", labelSmoothing: 0.1 },
      { lossType: "discopop", discopopTau: 0.1, beta: 0.05 },
      { lossType: "ipo", useWeighting: true, fDivergenceType: "alpha_divergence", fAlphaDivergenceCoef: 0.3 },
      { lossType: "kto_pair", referenceFree: true },
    ];
    for (const o of accepted) {
      const c = make(o);
      const r = resolveDpoLossConfig(c);
      assert.equal(r.beta, c.beta);
      assert.equal(r.labelSmoothing, c.labelSmoothing);
      assert.deepEqual(r.types, c.lossTypes);
      assert.deepEqual(r.weights, c.lossWeights ?? c.lossTypes.map(() => 1));
      assert.equal(r.rpoAlpha, c.rpoAlpha ?? 0);
      assert.equal(r.useWeighting, c.useWeighting);
      assert.equal(r.referenceFree, c.referenceFree);
    }
    const rejected: Partial<DPOConfigInit>[] = [
      { lossType: "robust", labelSmoothing: 0.5 },
      { labelSmoothing: -0.1 },
      { lossType: "exo_pair", labelSmoothing: 0 },
      { lossType: ["sigmoid", "ipo"], lossWeights: [1] },
      { lossType: "aot", useWeighting: true },
      { lossType: "dpo" as never },
      { lossType: ["aot_pair", "aot_unpaired"] },
      { beta: 0 },
      { discopopTau: 0 },
    ];
    for (const o of rejected) {
      assert.throws(() => make(o), ConfigError, JSON.stringify(o));
      assert.throws(() => resolveDpoLossConfig({ ...o } as DpoLossConfig), ConfigError, JSON.stringify(o));
    }
  } finally {
    console.warn = orig;
    resetDpoLossWarnings();
  }
  // The loss types the config accepts are SPEC.md's table (and the alias), and the loss kernel has each of them.
  const spec = [
    "sigmoid",
    "robust",
    "hinge",
    "ipo",
    "exo_pair",
    "kto_pair",
    "bco_pair",
    "sppo_hard",
    "nca_pair",
    "aot",
    "aot_pair",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
    "sft",
  ];
  assert.deepEqual([...LOSS_TYPE_NAMES].sort(), [...spec, "aot_unpaired"].sort());
  assert.deepEqual([...DPO_LOSS_TYPES].sort(), [...spec].sort());
});
