/**
 * `webdpo train` configuration: YAML files, command-line flags overriding them, typed parsing, errors naming the
 * file / flag, and the generated `--help`. Pure TypeScript (no GPU).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  buildTrainConfig,
  ConfigError,
  loadTrainConfig,
  parseTrainArgs,
  trainHelp,
  typeLabel,
  wantsHelp,
} from "../src/cli/config_file.ts";
import { FIELDS } from "../src/dpo/config_table.ts";

const quiet = { printWarnings: false };
const dir = await Deno.makeTempDir({ prefix: "webdpo_config_test_" });
let n = 0;
async function yamlFile(text: string): Promise<string> {
  const path = `${dir}/c${n++}.yaml`;
  await Deno.writeTextFile(path, text);
  return path;
}

const BASE = `# a commented webdpo / trl dpo config
model_name_or_path: ./SmolLM2-135M-Instruct
dataset_name: prefs.jsonl
output_dir: out
beta: 0.2
loss_type: [sigmoid, sft]
loss_weights: [1.0, 0.5]
learning_rate: 5.0e-7
per_device_train_batch_size: 2
gradient_checkpointing: true
lr_scheduler_type: cosine_with_min_lr
lr_scheduler_kwargs:
  min_lr_rate: 0.1
`;

async function rejects(p: Promise<unknown> | (() => unknown), ...patterns: RegExp[]): Promise<string> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
  for (const re of patterns) assert.match(err.message, re);
  return err.message;
}

Deno.test("YAML keys with defaults for the rest; script keys split off", async () => {
  const path = await yamlFile(BASE);
  const { config, script } = await loadTrainConfig(path, [], quiet);
  assert.deepEqual(script, {
    modelNameOrPath: "./SmolLM2-135M-Instruct",
    modelRevision: "main",
    refModelNameOrPath: null,
    datasetName: "prefs.jsonl",
    datasetConfig: null,
    datasetTrainSplit: "train",
    datasetTestSplit: "test",
    datasets: null,
    testSplitSize: null,
    usePeft: false,
    loraR: 16,
    loraAlpha: 32,
    loraDropout: 0.05,
    loraTargetModules: null,
    loraModulesToSave: null,
    useRslora: false,
    int8Base: false,
  });
  assert.equal(config.beta, 0.2);
  assert.deepEqual(config.lossType, ["sigmoid", "sft"]);
  assert.deepEqual(config.lossWeights, [1, 0.5]);
  assert.equal(config.learningRate, 5e-7);
  assert.equal(config.perDeviceTrainBatchSize, 2);
  assert.equal(config.gradientCheckpointing, true);
  assert.deepEqual(config.lrSchedulerKwargs, { min_lr_rate: 0.1 });
  assert.equal(config.outputDir, "out");
  // Untouched keys keep TRL's defaults.
  assert.equal(config.perDeviceEvalBatchSize, 8);
  assert.equal(config.loggingSteps, 500);
});

Deno.test("flags override the YAML: --key value, --key=value, kebab-case, booleans, lists, mappings", async () => {
  const path = await yamlFile(BASE);
  const { config, script } = await loadTrainConfig(path, [
    "--beta",
    "0.3",
    "--learning_rate=1e-6",
    "--per-device-train-batch-size",
    "4",
    "--gradient_checkpointing",
    "false",
    "--disable_dropout=no",
    "--logging_first_step",
    "--loss_type",
    "ipo",
    "--loss_weights",
    "2",
    "--lr_scheduler_kwargs",
    '{"min_lr": 1e-7}',
    "--dataset_test_split",
    "validation",
    "--label_pad_token_id",
    "-100",
    "--max_steps",
    "-1",
  ], quiet);
  assert.equal(config.beta, 0.3);
  assert.equal(config.learningRate, 1e-6);
  assert.equal(config.perDeviceTrainBatchSize, 4);
  assert.equal(config.gradientCheckpointing, false);
  assert.equal(config.disableDropout, false);
  assert.equal(config.loggingFirstStep, true);
  assert.equal(config.lossType, "ipo", "the flag replaces the YAML's list");
  assert.deepEqual(config.lossWeights, [2]);
  assert.deepEqual(config.lrSchedulerKwargs, { min_lr: 1e-7 });
  assert.equal(config.labelPadTokenId, -100);
  assert.equal(config.maxSteps, -1);
  assert.equal(script.datasetTestSplit, "validation");
  assert.equal(script.modelNameOrPath, "./SmolLM2-135M-Instruct");
});

Deno.test("lists comma-separated or repeated; null and none; resume_from_checkpoint forms", async () => {
  const path = await yamlFile(BASE + "max_length: 256\nreport_to: jsonl\n");
  let r = await loadTrainConfig(path, [
    "--loss_type",
    "sigmoid,robust",
    "--loss_type",
    "sft",
    "--loss_weights=1,0.5",
    "--loss_weights",
    "0.25",
    "--max_length",
    "null",
    "--report_to",
    "none",
    "--resume_from_checkpoint",
  ], quiet);
  assert.deepEqual(r.config.lossType, ["sigmoid", "robust", "sft"]);
  assert.deepEqual(r.config.lossWeights, [1, 0.5, 0.25]);
  assert.equal(r.config.maxLength, null);
  assert.deepEqual(r.config.reportTo, ["none"]);
  assert.equal(r.config.resumeFromCheckpoint, true);
  r = await loadTrainConfig(path, [
    "--resume_from_checkpoint",
    "out/checkpoint-20",
    "--max_length",
    "none",
    "--lr_scheduler_kwargs",
    "min_lr_rate=0.2",
  ], quiet);
  assert.equal(r.config.resumeFromCheckpoint, "out/checkpoint-20");
  assert.equal(r.config.maxLength, null);
  assert.deepEqual(r.config.reportTo, ["jsonl"]);
  assert.deepEqual(r.config.lrSchedulerKwargs, { min_lr_rate: 0.2 });
  r = await loadTrainConfig(path, ["--resume_from_checkpoint=false", "--disable_tqdm", "--seed", "7"], quiet);
  assert.equal(r.config.resumeFromCheckpoint, false);
  assert.equal(r.config.disableTqdm, true);
  assert.equal(r.config.seed, 7);
});

Deno.test("--config in argv, and every key from flags alone", async () => {
  const path = await yamlFile(BASE);
  const a = await loadTrainConfig(undefined, ["--config", path, "--beta", "0.5"], quiet);
  assert.equal(a.config.beta, 0.5);
  assert.deepEqual(a.config.lossType, ["sigmoid", "sft"]);
  const b = await loadTrainConfig(undefined, [
    "--model_name_or_path",
    "m",
    "--dataset_name",
    "d.jsonl",
    "--output_dir",
    "o",
  ], quiet);
  assert.equal(b.script.modelNameOrPath, "m");
  assert.equal(b.config.beta, 0.1);
  await rejects(loadTrainConfig(path, ["--config", path]), /two config files/);
  await rejects(
    loadTrainConfig(undefined, ["--config", path, "--config", path]),
    /--config is given more than once/,
  );
  await rejects(loadTrainConfig(undefined, ["--config"]), /--config needs the path of a YAML file/);
});

Deno.test("flag errors name the flag and the expected type", async () => {
  const path = await yamlFile(BASE);
  await rejects(
    loadTrainConfig(path, ["--per_device_train_batch_size", "abc"]),
    /--per_device_train_batch_size expects an integer; got 'abc'/,
  );
  await rejects(
    loadTrainConfig(path, ["--per_device_train_batch_size", "2.5"]),
    /expects an integer; got '2\.5'/,
  );
  await rejects(loadTrainConfig(path, ["--beta", "1e"]), /--beta expects a number; got '1e'/);
  await rejects(
    loadTrainConfig(path, ["--max_length", "big"]),
    /--max_length expects an integer \(or null\)/,
  );
  await rejects(
    loadTrainConfig(path, ["--loss_weights", "1,x"]),
    /--loss_weights expects a comma-separated list/,
  );
  await rejects(
    loadTrainConfig(path, ["--lr_scheduler_kwargs", "{bad"]),
    /--lr_scheduler_kwargs expects a mapping/,
  );
  await rejects(
    loadTrainConfig(path, ["--beta", "0.1", "--beta", "0.2"]),
    /--beta is given 2 times; give it once/,
  );
  await rejects(loadTrainConfig(path, ["--beta"]), /--beta needs a value \(float > 0\)/);
  await rejects(loadTrainConfig(path, ["--beta", "--seed", "1"]), /--beta needs a value/);
  await rejects(loadTrainConfig(path, ["--betaa", "0.1"]), /unknown flag '--betaa'; did you mean '--beta'\?/);
  await rejects(
    loadTrainConfig(path, ["--learningRate", "1"]),
    /unknown flag '--learningRate'; did you mean '--learning_rate'\?/,
  );
  await rejects(loadTrainConfig(path, ["--bf16"]), /unknown flag '--bf16': webdpo computes in float32/);
  await rejects(loadTrainConfig(path, ["beta", "0.1"]), /unexpected argument 'beta'/);
  await rejects(loadTrainConfig(path, ["--help"]), /trainHelp/);
  // Values pass through DPOConfig's validation, with snake_case names.
  await rejects(loadTrainConfig(path, ["--beta", "0"]), /beta must be > 0; got 0/);
  await rejects(
    loadTrainConfig(path, ["--loss_type", "sigmoid"]),
    /loss_weights has 2 value\(s\) but loss_type has 1/,
  );
  await rejects(
    loadTrainConfig(path, ["--eval_strategy", "step"]),
    /eval_strategy must be one of no, steps, epoch/,
  );
  await rejects(
    loadTrainConfig(path, ["--loss_type", "exo_pair", "--loss_weights", "1"]),
    /'exo_pair' needs label_smoothing > 0.*1e-3/,
  );
});

Deno.test("YAML errors name the file and the key", async () => {
  const typo = await yamlFile(BASE + "betaa: 0.1\nwarmup_step: 3\n");
  const msg = await rejects(loadTrainConfig(typo, []), /c\d+\.yaml: 2 unknown keys/);
  assert.match(msg, /unknown key 'betaa'; did you mean 'beta'\?/);
  assert.match(msg, /unknown key 'warmup_step'; did you mean 'warmup_steps'\?/);
  await rejects(
    loadTrainConfig(await yamlFile(BASE + "learningRate: 1e-5\n"), []),
    /unknown key 'learningRate'; did you mean 'learning_rate'\?/,
  );
  await rejects(
    loadTrainConfig(await yamlFile(BASE + "load_in_8bit: true\n"), []),
    /unknown key 'load_in_8bit': webdpo has no bitsandbytes.*int8_base/,
  );
  await rejects(
    loadTrainConfig(await yamlFile(BASE + "evaluation_strategy: steps\n"), []),
    /unknown key 'evaluation_strategy': transformers 4\.41 renamed it: use eval_strategy/,
  );
  await rejects(
    loadTrainConfig(await yamlFile(BASE + "seed: abc\n"), []),
    /c\d+\.yaml: seed expects an integer; got 'abc'/,
  );
  await rejects(
    loadTrainConfig(await yamlFile(BASE + "weight_decay: [1]\n"), []),
    /weight_decay must be a finite number ≥ 0; got \[1\]/,
  );
  await rejects(loadTrainConfig(await yamlFile(BASE + "beta: 0.3\n"), []), /not valid YAML: .*unique/);
  await rejects(loadTrainConfig(await yamlFile("- a\n- b\n"), []), /must be a YAML mapping/);
  await rejects(
    loadTrainConfig(`${dir}/missing.yaml`, []),
    /cannot read the config file .*missing\.yaml: no such file/,
  );
  await rejects(
    loadTrainConfig(await yamlFile("dataset_name: d\noutput_dir: o\n"), []),
    /model_name_or_path is required \(in the YAML file or as --model_name_or_path\)/,
  );
  await rejects(
    loadTrainConfig(await yamlFile("model_name_or_path: m\noutput_dir: o\n"), []),
    /dataset_name is required/,
  );
  await rejects(
    loadTrainConfig(await yamlFile("model_name_or_path: m\ndataset_name: d\n"), []),
    /output_dir is required/,
  );
  await rejects(loadTrainConfig(await yamlFile(BASE + "dataset_train_split: 3\n"), []), /non-empty string/);
});

Deno.test("quoted YAML scalars are typed by the key, as TRL's parser does; empty YAML is no keys", async () => {
  const path = await yamlFile(
    BASE.replace("learning_rate: 5.0e-7", 'learning_rate: "5e-7"').replace("[1.0, 0.5]", '["1", 2]') +
      'warmup_steps: "3"\nlogging_first_step: "true"\nmax_length: "null"\nlogging_steps: 0.1\n',
  );
  const { config } = await loadTrainConfig(path, [], quiet);
  assert.equal(config.learningRate, 5e-7);
  assert.equal(config.warmupSteps, 3);
  assert.equal(config.loggingFirstStep, true);
  assert.equal(config.maxLength, null);
  assert.deepEqual(config.lossWeights, [1, 2]);
  assert.equal(config.loggingSteps, 0.1);
  const empty = await yamlFile("# nothing\n");
  const r = await loadTrainConfig(
    empty,
    ["--model_name_or_path=m", "--dataset_name=d", "--output_dir=o"],
    quiet,
  );
  assert.equal(r.config.beta, 0.1);
});

Deno.test("a saved config (toSnakeCase) written as YAML loads back to the same config", async () => {
  const { config, script } = await loadTrainConfig(
    await yamlFile(BASE + "eval_strategy: steps\nreport_to: [jsonl]\nresume_from_checkpoint: true\n"),
    [],
    quiet,
  );
  const yaml = stringify({
    model_name_or_path: script.modelNameOrPath,
    dataset_name: script.datasetName,
    ...config.toSnakeCase(),
  });
  const back = await loadTrainConfig(await yamlFile(yaml), [], quiet);
  assert.deepEqual(back.config.toSnakeCase(), config.toSnakeCase());
  assert.deepEqual(back.script, script);
  const minimal = stringify({
    model_name_or_path: "m",
    dataset_name: "d",
    ...config.toSnakeCase({ omitDefaults: true }),
  });
  assert.deepEqual(
    (await loadTrainConfig(await yamlFile(minimal), [], quiet)).config.toSnakeCase(),
    config.toSnakeCase(),
  );
});

Deno.test("buildTrainConfig and parseTrainArgs", () => {
  const a = parseTrainArgs([
    "--beta",
    "0.1",
    "-h",
    "--gradient_checkpointing",
    "--loss_type=a",
    "--loss_type",
    "b",
  ]);
  assert.equal(a.help, true);
  assert.deepEqual([...a.flags], [["beta", ["0.1"]], ["gradient_checkpointing", [true]], ["loss_type", [
    "a",
    "b",
  ]]]);
  assert.ok(wantsHelp(["--beta", "1", "--help"]));
  assert.ok(!wantsHelp(["--beta", "1"]));
  const r = buildTrainConfig({
    model_name_or_path: "m",
    dataset_name: "d",
    output_dir: "o",
    ref_model_name_or_path: "r",
  }, quiet);
  assert.equal(r.script.refModelNameOrPath, "r");
  assert.equal(r.config.outputDir, "o");
});

Deno.test("webdpo train --help lists every key with its type, default and documentation, grouped", () => {
  const help = trainHelp();
  for (const f of FIELDS) {
    const line = help.split("\n").findIndex((l) => l.startsWith(`  --${f.name} <`));
    assert.ok(line >= 0, `--help lists ${f.name}`);
    const text = help.split("\n")[line];
    assert.ok(text.includes(`<${typeLabel(f)}>`), `${f.name} type`);
    assert.ok(help.split("\n")[line + 1].includes(f.doc), `${f.name} doc`);
  }
  const at = (s: string) => help.indexOf(s);
  assert.ok(at("\nscript:\n") < at("\nDPO:\n") && at("\nDPO:\n") < at("\ntraining:\n"));
  assert.ok(at("\ntraining:\n") < at("\nwebdpo-only:\n"));
  const webdpoOnly = help.slice(at("\nwebdpo-only:\n"));
  assert.match(webdpoOnly, /--ref_model_name_or_path <str> {2}\(default: unset; webdpo-only\)/);
  assert.match(help, /--beta <float > 0> {2}\(default: 0\.1; TRL ≥ 0\.9\)/);
  assert.match(help, /--learning_rate <float ≥ 0> {2}\(default: 5e-5; TRL ≥ 0\.9\)/);
  assert.match(help, /--loss_weights <list of float ≥ 0> {2}\(default: unset; TRL ≥ 0\.20\)/);
  assert.match(help, /--rpo_alpha <float ≥ 0> {2}\(default: unset; TRL ≥ 0\.9, < 0\.29\)/);
  assert.match(help, /--output_dir <str> {2}\(default: required; TRL ≥ 0\.9\)/);
  assert.match(help, /--logging_steps <int ≥ 1 \| fraction in \(0, 1\)> {2}\(default: 500;/);
  assert.match(help, /aot_unpaired/);
  assert.match(help, /^usage: webdpo train \[--config dpo\.yaml\]/);
  assert.match(help, /--config <path> {2}a YAML file/);
});

Deno.test({
  name: "cleanup temp dir",
  fn: async () => {
    await Deno.remove(dir, { recursive: true });
  },
});
