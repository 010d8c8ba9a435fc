/**
 * `webdpo train --config dpo.yaml [--key value ...]`: the YAML file and flags (src/cli/config_file.ts) → the
 * datasets, the policy, the reference and the tokenizer → DPOTrainer → the trained model in `output_dir`.
 *
 * The cheap checks come first (config, dataset paths and splits), then the model is loaded, so a typo costs no
 * model load. Errors a user can cause are printed as one paragraph on stderr without a stack trace: exit code 2
 * for a bad command line or config (unknown key, bad value, a split the config needs but the data lacks), 1 for a
 * failure while running (missing model files, a malformed dataset row, no WebGPU adapter, a NaN loss).
 *
 * @module
 */
import { type Dataset, loadDataset } from "../data/dataset.ts";
import { loadMixture } from "../data/mixture.ts";
import { DPOTrainer } from "../dpo/trainer.ts";
import { WebDPOError } from "../gpu/errors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { loadTokenizer } from "../tokenizer/tokenizer.ts";
import { ConfigError, loadTrainConfig, type TrainConfig, trainHelp, wantsHelp } from "./config_file.ts";
import { plotTraining } from "../plot/training.ts";
import { loadPolicy, loadReference } from "../dpo/lora_reference.ts";
import { loraOf, unloadLora } from "../nn/lora.ts";
import { disposeQuantized } from "../nn/lora_quant.ts";
import { type HalfDtype, halfDtypeOf } from "../nn/half_weights.ts";
import type { DPOConfig } from "../dpo/config.ts";

/** Where `trainCommand` writes (tests pass sinks; default the console). */
export interface TrainIO {
  out(line: string): void;
  err(line: string): void;
}

const CONSOLE_IO: TrainIO = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** The result of a completed `webdpo train` run. */
export interface TrainRunResult {
  /** Where the final model was saved (`output_dir`). */
  outputDir: string;
  /** Optimizer steps taken. */
  globalStep: number;
  /** The mean training loss over the logged steps. */
  trainingLoss: number;
  /** The run was stopped early (Ctrl-C): a checkpoint was saved instead of the final model. */
  interrupted: boolean;
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

/**
 * The train and (when evaluation is on) eval datasets the script keys name: `dataset_name` (a file, a folder or a
 * hub id in the Hugging Face cache, with `dataset_config` and the split keys), or TRL's `datasets` mixture (with
 * `test_split_size` for the eval split). Datasets are never downloaded.
 */
export async function loadTrainDatasets(tc: TrainConfig): Promise<{ train: Dataset; eval: Dataset | null }> {
  const { datasetName, datasetConfig, datasetTrainSplit, datasetTestSplit, datasets, testSplitSize } =
    tc.script;
  const strategy = tc.config.evalStrategy;
  const needsEval = strategy !== "no";
  if (datasets !== null) {
    const seed = tc.config.dataSeed ?? tc.config.seed;
    const { train, test } = await loadMixture(datasets, { testSplitSize, seed });
    if (needsEval && test === null) {
      throw new ConfigError(
        `eval_strategy is '${strategy}', so the run needs a test split: a \`datasets\` mixture has one only ` +
          "with test_split_size (the share or number of rows to hold out, e.g. 0.05), or set eval_strategy: no",
      );
    }
    return { train, eval: needsEval ? test : null };
  }
  const name = datasetName!;
  const train = await loadDataset(name, { split: datasetTrainSplit, name: datasetConfig });
  if (!needsEval) return { train, eval: null };
  const info = await statOrNull(name);
  if (info !== null && !info.isDirectory) {
    throw new ConfigError(
      `eval_strategy is '${strategy}', so the run needs the '${datasetTestSplit}' split ` +
        `(dataset_test_split), but dataset_name ${name} is a single file, which is the train split only: ` +
        `point dataset_name at a folder holding ${datasetTrainSplit}.jsonl and ${datasetTestSplit}.jsonl ` +
        `(or data/${datasetTrainSplit}-*.parquet and data/${datasetTestSplit}-*.parquet), or set eval_strategy: no`,
    );
  }
  let evalData: Dataset;
  try {
    evalData = await loadDataset(name, { split: datasetTestSplit, name: datasetConfig });
  } catch (e) {
    if (!(e instanceof WebDPOError)) throw e;
    throw new ConfigError(
      `eval_strategy is '${strategy}', so the run needs the '${datasetTestSplit}' split ` +
        `(dataset_test_split), but ${
          train.name.replace(/ \[[^\]]*\]$/, "")
        } has no files for it (${e.message}): ` +
        `add the split, name an existing one with dataset_test_split, or set eval_strategy: no`,
    );
  }
  return { train, eval: evalData };
}

/** ref_model_init_kwargs' torch_dtype as a storage format (null: f32); a ConfigError for an unknown dtype. */
function refDtypeOf(config: DPOConfig): HalfDtype | null {
  try {
    return halfDtypeOf(config.refModelInitKwargs, "ref_model_init_kwargs");
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

function countParameters(model: CausalLM): number {
  let n = 0;
  for (const p of model.parameters()) n += p.size;
  return n;
}

function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** Runs a parsed `webdpo train` configuration to the end and saves the model; errors propagate. */
export async function runTrain(tc: TrainConfig, io: TrainIO = CONSOLE_IO): Promise<TrainRunResult> {
  const { config, script } = tc;
  const refDtype = refDtypeOf(config); // an unknown dtype fails before anything loads
  const data = await loadTrainDatasets(tc);
  const loadOpts = { revision: script.modelRevision, int8Base: script.int8Base };
  // a model folder, a cached hub id, or a PEFT adapter folder (its base with the adapter loaded)
  const model = await loadPolicy(script.modelNameOrPath, config, loadOpts);
  let refModel: CausalLM | null = null;
  let trainer: DPOTrainer | null = null;
  try {
    const tokenizer = await loadTokenizer(model.sourceDir ?? script.modelNameOrPath);
    if (script.refModelNameOrPath !== null) {
      if (config.referenceFree) {
        throw new ConfigError(
          "ref_model_name_or_path and reference_free: true contradict each other (reference_free uses no " +
            "reference model); remove one",
        );
      }
      refModel = await loadReference(script.refModelNameOrPath, loadOpts);
      // TRL's ref_model_init_kwargs torch_dtype: the loaded reference's matrices stored in 16 bits
      if (refDtype && loraOf(refModel)) {
        throw new ConfigError(
          `ref_model_init_kwargs torch_dtype ${refDtype}: ${script.refModelNameOrPath} is a PEFT adapter folder, ` +
            `whose reference webdpo keeps in float32; merge the adapter into a model folder, or drop the dtype`,
        );
      }
      if (refDtype) refModel.storeMatricesHalf(refDtype);
    }
    const lora = tc.peftConfig !== null || loraOf(model) !== null;
    const stored = refDtype ? ` (stored in ${refDtype})` : "";
    const reference = config.referenceFree
      ? "none (reference_free)"
      : refModel
      ? script.refModelNameOrPath! + stored
      : lora
      ? config.refAdapterName
        ? `the adapter "${config.refAdapterName}"`
        : "the base model (adapters disabled)"
      : "a frozen copy of the initial policy" + stored;
    io.out(
      `webdpo train: policy ${script.modelNameOrPath} (${model.config.modelType}, ` +
        `${humanCount(countParameters(model))} parameters); reference: ${reference}` +
        `${config.precomputeRefLogProbs ? " (log-probs precomputed)" : ""}`,
    );
    io.out(
      `  data: ${data.train.name}${data.eval ? `, eval: ${data.eval.name}` : ""}; ` +
        `loss_type ${Array.isArray(config.lossType) ? config.lossType.join("+") : config.lossType}, ` +
        `beta ${config.beta}, learning_rate ${config.learningRate}; output_dir ${config.outputDir}`,
    );
    trainer = new DPOTrainer({
      model,
      refModel,
      peftConfig: tc.peftConfig,
      args: config,
      trainDataset: data.train,
      evalDataset: data.eval,
      tokenizer,
    });
    const out = await trainer.train();
    // a run stopped early (Ctrl-C) has saved a checkpoint and said how to resume: no final model then
    if (out.interrupted === true) {
      return {
        outputDir: config.outputDir,
        globalStep: out.globalStep,
        trainingLoss: out.trainingLoss,
        interrupted: true,
      };
    }
    await trainer.save(config.outputDir);
    try {
      const svg = await plotTraining(config.outputDir);
      io.out(`wrote the training curves to ${svg}`);
    } catch (e) {
      io.out(`(no training plot: ${e instanceof Error ? e.message : e})`);
    }
    io.out(
      `saved the trained ${lora ? "LoRA adapter" : "model"} to ${config.outputDir} (` +
        (lora
          ? "adapter_config.json, adapter_model.safetensors: a PEFT folder"
          : "config.json, model.safetensors, tokenizer files") +
        `) after ` +
        `${out.globalStep} steps, mean training loss ${fmtLoss(out.trainingLoss)}; try it with ` +
        `\`webdpo generate --model ${config.outputDir} --prompt "..."\` or transformers' from_pretrained`,
    );
    return {
      outputDir: config.outputDir,
      globalStep: out.globalStep,
      trainingLoss: out.trainingLoss,
      interrupted: false,
    };
  } finally {
    trainer?.dispose();
    for (const m of [refModel, model]) {
      if (!m) continue;
      unloadLora(m);
      disposeQuantized(m);
      m.dispose();
    }
  }
}

function fmtLoss(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

/** One paragraph for an error: its message, lines joined, without a stack trace. */
function paragraph(e: Error): string {
  return e.message.trim();
}

/**
 * `webdpo train ARGS`: the exit code (0 done or help, 2 a bad command line or config, 1 a failure while running).
 * Errors webdpo raises on purpose are one paragraph on stderr; anything else is an internal error printed with
 * its stack so it can be reported.
 */
export async function trainCommand(argv: readonly string[], io: TrainIO = CONSOLE_IO): Promise<number> {
  if (wantsHelp(argv)) {
    io.out(trainHelp());
    return 0;
  }
  let tc: TrainConfig;
  try {
    if (argv.length === 0) {
      throw new ConfigError(
        "no configuration: give --config dpo.yaml and/or --key value flags (see webdpo train --help)",
      );
    }
    tc = await loadTrainConfig(undefined, argv);
  } catch (e) {
    return report(e, io);
  }
  try {
    await runTrain(tc, io);
    return 0;
  } catch (e) {
    return report(e, io);
  }
}

function report(e: unknown, io: TrainIO): number {
  if (e instanceof ConfigError) {
    io.err(`webdpo train: ${paragraph(e)}`);
    return 2;
  }
  if (e instanceof WebDPOError) {
    io.err(`webdpo train: ${paragraph(e)}`);
    return 1;
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotFound) {
    io.err(`webdpo train: ${paragraph(e)}`);
    return 1;
  }
  io.err(`webdpo train: internal error (please report it with the output of \`webdpo env\`):`);
  io.err(e instanceof Error ? e.stack ?? e.message : String(e));
  return 1;
}
