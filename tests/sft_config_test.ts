/**
 * SFTConfig on the config builder (pure TypeScript, no GPU): the training arguments it gained with the shared
 * rows (evaluation, checkpoints, metrics file, resume, schedule options) and their defaults, and the messages
 * and rules it now shares with DPOConfig. sft_test.ts keeps the checks SFTConfig had before; sft_train_args_test.ts
 * runs the new options.
 */
import assert from "node:assert/strict";
import { TRAINING_ROWS } from "../src/config/training.ts";
import { resetPrintedConfigWarnings } from "../src/dpo/config.ts";
import { SFTConfig, SFTConfigError, type SFTConfigInit } from "../src/sft/config.ts";

const quiet = { printWarnings: false };
const make = (o: SFTConfigInit = {}) => new SFTConfig(o, quiet);

/** Asserts that `fn` throws an SFTConfigError whose message is `message`. */
function rejects(fn: () => unknown, message: string): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof SFTConfigError, `expected an SFTConfigError, got ${e}`);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("SFTConfig's defaults: TRL's SFTConfig values, and no checkpoints or metrics file unless asked", () => {
  assert.deepEqual(make().toSnakeCase(), {
    output_dir: "outputs/sft",
    padding_free: true, // webdpo packs batches by default (TRL: false, FlashAttention only)
    seed: 42,
    data_seed: null,
    per_device_train_batch_size: 8,
    per_device_eval_batch_size: 8,
    gradient_accumulation_steps: 1,
    learning_rate: 2e-5,
    weight_decay: 0,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    max_grad_norm: 1,
    num_train_epochs: 3,
    max_steps: -1,
    lr_scheduler_type: "linear",
    // the options SFTConfig gained with the shared training rows
    lr_scheduler_kwargs: {},
    warmup_ratio: 0,
    warmup_steps: 0,
    logging_steps: 10,
    logging_first_step: false,
    eval_strategy: "no",
    eval_steps: null,
    save_strategy: "no",
    save_steps: 500,
    save_total_limit: null,
    resume_from_checkpoint: null,
    report_to: ["none"],
    disable_tqdm: false,
    gradient_checkpointing: false,
    max_length: 1024,
    assistant_only_loss: true,
    completion_only_loss: null,
    dataset_text_field: "text",
    label_pad_token_id: -100,
  });
  // every training argument the loop reads, under the same names as DPOConfig's
  const keys = Object.keys(make().toSnakeCase());
  for (const f of TRAINING_ROWS) assert.ok(keys.includes(f.name), f.name);
});

Deno.test("SFTConfig takes the evaluation, checkpoint, metrics and resume options, checked as DPOConfig's", () => {
  const c = make({
    evalStrategy: "steps",
    loggingSteps: 4,
    saveStrategy: "steps",
    saveSteps: 0.25,
    saveTotalLimit: 2,
    reportTo: "jsonl" as never,
    resumeFromCheckpoint: true,
    lrSchedulerType: "cosine_with_min_lr",
    lrSchedulerKwargs: { min_lr_rate: 0.1 },
  });
  assert.equal(c.evalSteps, 4, "eval_steps falls back to logging_steps");
  assert.deepEqual(c.reportTo, ["jsonl"], "one report_to value is a list of one");
  assert.deepEqual([c.saveSteps, c.saveTotalLimit, c.resumeFromCheckpoint], [0.25, 2, true]);
  assert.deepEqual(c.lrSchedulerKwargs, { min_lr_rate: 0.1 });
  assert.equal(make({ evalStrategy: "epoch" }).evalSteps, null);
  rejects(
    () => make({ evalStrategy: "step" as never }),
    "SFTConfig: evalStrategy must be one of no, steps, epoch; got 'step' (did you mean 'steps'?)",
  );
  rejects(
    () => make({ saveSteps: 1.5 }),
    "SFTConfig: saveSteps must be a whole number of steps ≥ 1, or a fraction in (0, 1) of the run's steps; got 1.5",
  );
  rejects(
    () => make({ reportTo: ["none", "jsonl"] }),
    "SFTConfig: reportTo: 'none' cannot be combined with other values; got none, jsonl",
  );
  rejects(
    () => make({ resumeFromCheckpoint: "" }),
    "SFTConfig: resumeFromCheckpoint must be true, false or a checkpoint folder; got ''",
  );
  rejects(
    () => make({ lrSchedulerType: "cosine_with_min_lr" }),
    "SFTConfig: lrSchedulerType 'cosine_with_min_lr' needs exactly one of min_lr and min_lr_rate in " +
      'lrSchedulerKwargs (for example {"min_lr_rate": 0.1}); got {}',
  );
  rejects(
    () => make({ lrSchedulerKwargs: { num_cycles: 1 } }),
    "SFTConfig: lrSchedulerKwargs: 'num_cycles' is not an option of the 'linear' schedule; it takes none",
  );
});

Deno.test("SFTConfig gains DPOConfig's messages: ranges, null, snake_case names, far-off keys", () => {
  rejects(() => make({ learningRate: -1 }), "SFTConfig: learningRate must be ≥ 0; got -1");
  rejects(
    () => make({ learningRate: "fast" as never }),
    "SFTConfig: learningRate must be a number ≥ 0; got 'fast'",
  );
  rejects(() => make({ adamEpsilon: 0 }), "SFTConfig: adamEpsilon must be > 0; got 0");
  rejects(
    () => make({ perDeviceTrainBatchSize: null as never }),
    "SFTConfig: perDeviceTrainBatchSize cannot be null (default 8)",
  );
  rejects(() => make({ maxSteps: 0 }), "SFTConfig: maxSteps must be -1 (use numTrainEpochs) or ≥ 1; got 0");
  rejects(
    () => make({ learning_rate: 1 } as never),
    'SFTConfig: unknown option "learning_rate" (did you mean "learningRate"?)',
  );
  assert.throws(
    () => make({ zzzzzzzz: 1 } as never),
    /unknown option "zzzzzzzz" \(no option is close; the options are outputDir, seed, /,
  );
  rejects(() => new SFTConfig(null as never), "SFTConfig: expected an object of options; got null");
  // values SFTConfig accepted before and its rows now refuse, as DPOConfig does
  rejects(() => make({ maxGradNorm: -1 }), "SFTConfig: maxGradNorm must be ≥ 0; got -1");
  rejects(() => make({ seed: -1 }), "SFTConfig: seed must be an integer ≥ 0; got -1");
  rejects(() => make({ outputDir: "" }), "SFTConfig: outputDir must be a non-empty string; got ''");
  rejects(
    () => make({ loggingSteps: 2.5 }),
    "SFTConfig: loggingSteps must be a whole number of steps ≥ 1, or a fraction in (0, 1) of the run's steps; got 2.5",
  );
  rejects(() => make({ maxLength: 1 }), "SFTConfig: maxLength must be an integer ≥ 2; got 1");
  rejects(
    () => make({ datasetTextField: "" }),
    "SFTConfig: datasetTextField must be a non-empty string; got ''",
  );
});

Deno.test("SFTConfig: warnings as DPOConfig's, printed once; frozen, with() makes a validated copy", () => {
  assert.deepEqual(make().warnings, []);
  assert.deepEqual(
    make({ warmupSteps: 5, warmupRatio: 0.1, maxSteps: 10, numTrainEpochs: 1, saveSteps: 3 }).warnings,
    [
      "saveSteps has no effect: saveStrategy is not 'steps'",
      "warmupSteps (5) overrides warmupRatio (0.1)",
      "numTrainEpochs has no effect: maxSteps (10) sets the run length",
    ],
  );
  const printed: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    resetPrintedConfigWarnings();
    new SFTConfig({ evalSteps: 3 });
    new SFTConfig({ evalSteps: 3 });
  } finally {
    console.warn = orig;
    resetPrintedConfigWarnings();
  }
  assert.deepEqual(printed, ["webdpo: evalSteps has no effect: evalStrategy is not 'steps'"]);

  const c = make({ learningRate: 1e-3 });
  assert.throws(() => {
    (c as unknown as { learningRate: number }).learningRate = 1;
  }, TypeError);
  const d = c.with({ maxSteps: 5 }, quiet);
  assert.deepEqual([d.learningRate, d.maxSteps, c.maxSteps], [1e-3, 5, -1]);
  assert.deepEqual(d.toCamelCase(), { ...c.toCamelCase(), maxSteps: 5 });
  rejects(() => c.with({ adamBeta1: 1 }), "SFTConfig: adamBeta1 must be in [0, 1); got 1");
});
