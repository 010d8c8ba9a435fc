/**
 * DPOTrainer: TRL's DPOTrainer semantics (SPEC.md) on WebGPU.
 *
 * One optimizer step = `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size` pairs. Per
 * micro-batch: collate [chosen; rejected] → one policy forward to the final hidden states → fused LM-head log-probs
 * of the shifted labels (no [2B, T, V] logits) → per-sequence log-probs → reference log-probs (a frozen model,
 * precomputed values, or none) → dpoLoss → backward of loss / accumulation steps. Then the gradient norm and
 * clipping, fused AdamW, the LR schedule, TR-DPO's reference sync. Metrics stay on the GPU and are read back once
 * per logging step (the latest step's loss and gradient norm are read one step late, for the NaN check and the
 * progress bar).
 *
 * Around the steps: logs every `logging_steps` (console, `output_dir/metrics.jsonl`, `log_history`), evaluation
 * (with generate_during_eval's samples), checkpoints every `save_steps` / epoch and at the end (checkpoint.ts:
 * atomic, everything an exact resume needs), `resume_from_checkpoint`, and a graceful stop on Ctrl-C or
 * `requestStop()`: the current step finishes, a checkpoint is saved, and `train()` returns `interrupted: true`.
 * The data order is a pure function of the seed and the epoch (`epochOrder`), so a resumed run sees exactly the
 * batches the uninterrupted run would have seen.
 *
 * LoRA (lora_reference.ts): `peftConfig`, or a model that already carries adapters, trains only the adapter (the
 * optimizer holds its tensors alone; the base gets no gradients). The reference is then an explicit `refModel`
 * (option 1), the policy with its adapters disabled (option 2) or with `ref_adapter_name` active (option 3).
 * Checkpoints and `save()` write the adapter as a PEFT folder instead of the model.
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { scale } from "../autograd/ops/scale.ts";
import { concat } from "../autograd/ops/concat.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { fusedLogProbsWithStats, shiftLabels } from "../autograd/ops/logprobs.ts";
import { scope } from "../autograd/scope.ts";
import { type Dataset, Dataset as DatasetClass, type Row } from "../data/dataset.ts";
import {
  collate,
  DatasetError,
  type PairBatch,
  resolveLengths,
  type RowTokenizer,
  type TokenizedRow,
} from "../data/tokenize_row.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { trimPool } from "../gpu/queue.ts";
import { gpu, isCpuAdapter } from "../gpu/device.ts";
import { memoryStats } from "../gpu/pool.ts";
import {
  availableMemory,
  estimateDpoMemory,
  gb,
  type MemoryEstimate,
  PROCESS_OVERHEAD,
} from "./memory_estimate.ts";
import { tokenizeDataset } from "../data/tokenize_parallel.ts";
import { init } from "../gpu/init.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { cloneModel } from "../models/clone.ts";
import { generate } from "../models/generate.ts";
import { saveModel } from "../models/loader.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, saveAdapter } from "../models/adapter_io.ts";
import { namedTrainableParametersOf } from "../nn/lora.ts";
import type { LoraConfig, LoraConfigInput } from "../nn/lora_config.ts";
import { AdamW, weightDecayGroups } from "../optim/adamw.ts";
import { gradNorm } from "../optim/grad_norm.ts";
import { LRScheduler, type SchedulerType } from "../optim/schedule.ts";
import { tensor } from "../tensor/create.ts";
import { Generator } from "../tensor/random.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type DPOConfig, intervalSteps } from "./config.ts";
import { type PairLogps, pairLogps } from "./batch.ts";
import { BcoRunningMean, DPO_LOSS_METRICS, dpoLoss } from "./loss.ts";
import {
  CHECKPOINT_FILES,
  checkpointDirName,
  commitCheckpoint,
  hfTrainerState,
  loadOptimizer,
  loadTensorsInto,
  missingCheckpointFiles,
  numberField,
  parseHfTrainerState,
  pruneCheckpoints,
  readJson,
  removeTemporaryCheckpoints,
  scanCheckpoints,
  writeJson,
  writeOptimizer,
  writeTensors,
} from "./checkpoint.ts";
import { JsonlLog } from "./metrics_log.ts";
import { formatLogLine, Progress, type ProgressStream } from "./progress.ts";
import { isSyncStep, mixInto } from "./sync_ref.ts";
import {
  adapterFileTensors,
  inReference,
  type LoraSetup,
  LoraTrainingError,
  referenceTensors,
  seedLoraDropout,
  setupLora,
} from "./lora_reference.ts";
import { exists } from "../util/fs.ts";

/** An error that stops training (a NaN loss, an unusable dataset, ...). */
export class TrainingError extends WebDPOError {}

/** What callbacks see; the layout of Hugging Face's TrainerState (camelCase). */
export interface TrainerState {
  globalStep: number;
  /** Fractional epoch (steps done / steps per epoch). */
  epoch: number;
  maxSteps: number;
  numTrainEpochs: number;
  stepsPerEpoch: number;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
  /** Every log and evaluation, as Hugging Face's `log_history`. */
  logHistory: Record<string, number>[];
  bestMetric: number | null;
  bestModelCheckpoint: string | null;
}

/** Hooks into the training loop (any subset). Each may be async. */
export interface TrainerCallback {
  onTrainBegin?(state: TrainerState): void | Promise<void>;
  onStepEnd?(state: TrainerState): void | Promise<void>;
  onLog?(state: TrainerState, logs: Record<string, number>): void | Promise<void>;
  onEvaluate?(state: TrainerState, metrics: Record<string, number>): void | Promise<void>;
  onSave?(state: TrainerState, checkpointDir: string): void | Promise<void>;
  onTrainEnd?(state: TrainerState): void | Promise<void>;
}

/** A tokenizer the trainer can use: tokenize_row's needs plus the pad id (the webdpo Tokenizer). */
export type TrainerTokenizer = RowTokenizer & {
  padTokenId: number | null;
  save?(dir: string): Promise<void>;
};

export interface DPOTrainerOptions {
  model: CausalLM;
  /** The reference model; default: a frozen GPU copy of the initial policy (unless reference_free). */
  refModel?: CausalLM | null;
  args: DPOConfig;
  trainDataset: Dataset | Row[];
  evalDataset?: Dataset | Row[] | null;
  tokenizer: TrainerTokenizer | Tokenizer;
  callbacks?: TrainerCallback[];
  /** [optimizer, scheduler]: replace the AdamW and schedule built from `args`. */
  optimizers?: [AdamW | null, LRScheduler | null];
  /** Extra evaluation metrics from the averaged eval metrics (returned keys get the eval_ prefix). */
  computeMetrics?: (metrics: Record<string, number>) => Record<string, number>;
  /**
   * A LoRA configuration (PEFT's options in camelCase, snake_case or TRL's lora_* names; PEFT's defaults for what is
   * missing): LoRA is put on `model` (base frozen) and only the adapter is trained. Without it, a model that
   * already has adapters (applyLora / loadAdapter) trains its active adapter (or `model_adapter_name`).
   */
  peftConfig?: LoraConfig | LoraConfigInput | null;
  /** Where log lines go when no progress bar is drawn (tests pass a sink); default the console. */
  log?: (line: string) => void;
  /** The terminal the progress bar is drawn on (default Deno.stderr; a bar only when it is a terminal). */
  progressStream?: ProgressStream;
  /** Stops training like Ctrl-C once aborted: after the current step, with a checkpoint. */
  stopSignal?: AbortSignal;
  /** Listen for SIGINT (Ctrl-C) during `train()` (default true). */
  handleSignals?: boolean;
}

/** The result of `train()`. */
export interface TrainOutput {
  globalStep: number;
  /** The mean training loss over the whole run (a resumed run included). */
  trainingLoss: number;
  /** train_loss, train_runtime, train_samples_per_second, train_steps_per_second, epoch. */
  metrics: Record<string, number>;
  /** True when Ctrl-C, `requestStop()` or `stopSignal` stopped the run before max_steps. */
  interrupted: boolean;
  /** The last checkpoint written by this `train()` call, or null. */
  checkpoint: string | null;
}

/** Where the next training batch comes from: the epoch and how many of its examples were used. */
interface DataPosition {
  epoch: number;
  cursor: number;
}

/** generate_during_eval: prompts and new tokens per evaluation. */
const GENERATION_PROMPTS = 3;
const GENERATION_TOKENS = 32;

interface Example {
  row: TokenizedRow;
  where: string;
  /** Precomputed reference log-probs (chosen, rejected). */
  ref?: [number, number];
}

/** The per-micro-batch values kept on the GPU until the next log: see `METRIC_SLOTS`. */
const METRIC_SLOTS = ["loss", ...DPO_LOSS_METRICS, "logits/chosen", "logits/rejected", "nll_loss"] as const;

function toDataset(d: Dataset | Row[]): Dataset {
  return Array.isArray(d) ? DatasetClass.fromRows(d) : d;
}

export class DPOTrainer {
  readonly model: CausalLM;
  refModel: CausalLM | null;
  readonly args: DPOConfig;
  readonly tokenizer: TrainerTokenizer;
  readonly callbacks: TrainerCallback[];
  optimizer: AdamW | null;
  scheduler: LRScheduler | null;
  readonly state: TrainerState;
  readonly bco: BcoRunningMean | null;
  private readonly trainData: Dataset;
  private readonly evalData: Dataset | null;
  private readonly computeMetrics?: (m: Record<string, number>) => Record<string, number>;
  private readonly out: (line: string) => void;
  private ownsRef = false;
  private train_: Example[] | null = null;
  private eval_: Example[] | null = null;
  private padId = 0;
  private readonly progressStream: ProgressStream | undefined;
  private readonly stopSignal: AbortSignal | undefined;
  private readonly handleSignals: boolean;
  private progress: Progress | null = null;
  private stopRequested = false;
  /** The step of the evaluation that set `state.bestMetric`. */
  private bestStep: number | null = null;
  /** The last checkpoint written or resumed from (named by the NaN error). */
  private lastCheckpoint: string | null = null;
  private readonly metricsLog: JsonlLog;
  private readonly generationsLog: JsonlLog;
  /** The LoRA side of the run (the trained and reference adapters), or null for full fine-tuning. */
  readonly lora: LoraSetup | null;

  constructor(opts: DPOTrainerOptions) {
    const a = opts.args;
    if (!a || typeof a !== "object" || !("lossType" in a)) {
      throw new TrainingError("args must be a DPOConfig (new DPOConfig({ outputDir, ... }))");
    }
    this.model = opts.model;
    this.args = a;
    this.tokenizer = opts.tokenizer as TrainerTokenizer;
    this.callbacks = opts.callbacks ?? [];
    this.optimizer = opts.optimizers?.[0] ?? null;
    this.scheduler = opts.optimizers?.[1] ?? null;
    this.trainData = toDataset(opts.trainDataset);
    this.evalData = opts.evalDataset ? toDataset(opts.evalDataset) : null;
    this.computeMetrics = opts.computeMetrics;
    this.out = opts.log ?? ((l) => console.log(l));
    this.progressStream = opts.progressStream;
    this.stopSignal = opts.stopSignal;
    this.handleSignals = opts.handleSignals ?? true;
    const jsonl = a.reportTo === null || a.reportTo.includes("jsonl") || a.reportTo.includes("all");
    this.metricsLog = new JsonlLog(`${a.outputDir}/metrics.jsonl`, jsonl);
    this.generationsLog = new JsonlLog(`${a.outputDir}/generations.jsonl`, jsonl);
    if (
      a.generateDuringEval && this.evalData &&
      typeof (this.tokenizer as { decode?: unknown }).decode !== "function"
    ) {
      throw new TrainingError(
        "generate_during_eval needs a tokenizer with decode(ids, { skipSpecialTokens }) (the webdpo Tokenizer)",
      );
    }
    if (a.referenceFree) {
      if (opts.refModel) throw new TrainingError("reference_free is set: do not pass a refModel");
      this.refModel = null;
    } else {
      this.refModel = opts.refModel ?? null;
    }
    if (this.refModel === this.model) {
      throw new TrainingError(
        "refModel is the policy model itself; pass a separate model, or none for a frozen copy",
      );
    }
    try {
      this.lora = setupLora(this.model, this.refModel, opts.peftConfig, a);
    } catch (e) {
      throw e instanceof LoraTrainingError ? new TrainingError(e.message) : e;
    }
    this.bco = a.lossType === "bco_pair" || (Array.isArray(a.lossType) && a.lossType.includes("bco_pair"))
      ? new BcoRunningMean()
      : null;
    this.state = {
      globalStep: 0,
      epoch: 0,
      maxSteps: 0,
      numTrainEpochs: 0,
      stepsPerEpoch: 0,
      loggingSteps: 0,
      evalSteps: 0,
      saveSteps: 0,
      trainBatchSize: a.perDeviceTrainBatchSize,
      logHistory: [],
      bestMetric: null,
      bestModelCheckpoint: null,
    };
  }

  // ------------------------------------------------------------------------------------------------------------
  // data

  private async tokenizeAll(data: Dataset): Promise<Example[]> {
    const a = this.args;
    const lengths = resolveLengths({ maxLength: a.maxLength, maxPromptLength: a.maxPromptLength });
    const opts = {
      ...lengths,
      truncationMode: a.truncationMode as "keep_end" | "keep_start",
      labelPadTokenId: a.labelPadTokenId,
    };
    const out: Example[] = [];
    // dataset_num_proc: worker threads, each with its own copy of the tokenizer (same result, in order)
    for (const { row, where } of await tokenizeDataset(data, this.tokenizer, opts, a.datasetNumProc ?? 1)) {
      const scored = (ids: number[]) => ids.slice(1).some((l) => l !== a.labelPadTokenId);
      if (!scored(row.chosen_labels) || !scored(row.rejected_labels)) {
        throw new DatasetError(`${where}: a completion has no token left to score after truncation`);
      }
      out.push({ row, where });
    }
    if (out.length === 0) throw new DatasetError(`${data.name}: the dataset has no rows`);
    return out;
  }

  private async prepare(): Promise<void> {
    await init();
    if (!this.train_) this.train_ = await this.tokenizeAll(this.trainData);
    if (this.evalData && !this.eval_) this.eval_ = await this.tokenizeAll(this.evalData);
    const pad = this.args.paddingValue ?? this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId;
    if (pad === null || pad === undefined) {
      throw new TrainingError("no padding id: set padding_value, or use a tokenizer with a pad or EOS token");
    }
    this.padId = pad;
    // a LoRA policy keeps its base frozen (only the adapter trains)
    if (!this.lora) { for (const p of this.model.parameters()) p.requiresGrad = true; }
    this.model.gradientCheckpointing = this.args.gradientCheckpointing;
    this.model.train();
    this.checkMemory();
    if (
      !this.args.referenceFree && !this.refModel && !this.lora &&
      !(this.args.precomputeRefLogProbs && this.allPrecomputed())
    ) {
      this.refModel = cloneModel(this.model);
      this.ownsRef = true;
    }
    if (this.refModel) {
      for (const p of this.refModel.parameters()) p.requiresGrad = false;
      this.refModel.eval();
    }
    if (this.args.precomputeRefLogProbs && !this.allPrecomputed()) {
      await this.precomputeReference(this.train_!);
      if (this.eval_) await this.precomputeReference(this.eval_);
      // generate_during_eval samples from the reference, so it is kept then
      if (this.ownsRef && !(this.args.generateDuringEval && this.eval_)) {
        this.refModel!.dispose();
        this.refModel = null;
        this.ownsRef = false;
      }
    }
  }

  /**
   * Refuses, before the reference copy and the first step allocate anything, a run whose estimated peak does not
   * fit the memory this machine has free (CPU adapters, where the GPU's memory is the process's: WebGPU tells
   * nothing of a GPU's free memory). The message gives the estimate and which of the usual remedies would fit.
   * `WEBDPO_NO_MEMORY_CHECK=1` turns it off.
   */
  private checkMemory(): void {
    try {
      if (Deno.env.get("WEBDPO_NO_MEMORY_CHECK")) return;
    } catch {
      // no --allow-env: check
    }
    if (!isCpuAdapter(gpu().info)) return;
    const free = availableMemory();
    if (free === null) return;
    const a = this.args;
    let tokens = 0;
    for (const e of [...this.train_!, ...(this.eval_ ?? [])]) {
      tokens = Math.max(tokens, e.row.chosen_input_ids.length, e.row.rejected_input_ids.length);
    }
    const params = this.model.parameters().reduce((n, p) => n + p.size, 0);
    const trainable = this.lora
      ? namedTrainableParametersOf(this.model).reduce((n, [, p]) => n + p.size, 0)
      : params;
    const base = {
      config: this.model.config,
      params,
      trainable,
      referenceCopy: !a.referenceFree && !this.refModel && !this.lora,
      rows: 2 * a.perDeviceTrainBatchSize,
      tokens,
      gradientCheckpointing: a.gradientCheckpointing,
    };
    const held = memoryStats().liveBytes; // the policy's weights, loaded already
    // what the run adds to the process (the loaded weights are in it already), with the allocators' overhead
    const adds = (e: MemoryEstimate) => (e.total - Math.min(held, e.weights)) * PROCESS_OVERHEAD;
    const fits = (e: MemoryEstimate) => adds(e) <= free;
    const est = estimateDpoMemory(base);
    if (fits(est)) return;
    const options: [string, MemoryEstimate][] = [
      [
        "LoRA (peft_config; no reference copy, gradients and AdamW state for the adapter only)",
        estimateDpoMemory({ ...base, trainable: Math.ceil(params / 100), referenceCopy: false }),
      ],
      ["gradient_checkpointing: true", estimateDpoMemory({ ...base, gradientCheckpointing: true })],
      [
        "precompute_ref_log_probs: true (the reference copy is freed before training)",
        estimateDpoMemory({ ...base, referenceCopy: false }),
      ],
    ];
    if (a.perDeviceTrainBatchSize > 1) {
      const b = Math.floor(a.perDeviceTrainBatchSize / 2);
      options.push([
        `per_device_train_batch_size: ${b} (with gradient_accumulation_steps × 2 for the same batch)`,
        estimateDpoMemory({ ...base, rows: 2 * b }),
      ]);
    }
    const shorter = Math.max(1, Math.floor(tokens / 2));
    options.push([`max_length: ${shorter}`, estimateDpoMemory({ ...base, tokens: shorter })]);
    const good = options.filter(([, e]) => fits(e)).map(([name, e]) => `${name} (about ${gb(e.total)})`);
    throw new TrainingError(
      `this run needs about ${gb(est.total)} at its peak (weights ${gb(est.weights)}, reference copy ` +
        `${gb(est.reference)}, gradients ${gb(est.gradients)}, AdamW state ${gb(est.optimizer)}, ` +
        `activations ${gb(est.activations)} for ${base.rows} rows of up to ${tokens} tokens): about ` +
        `${gb(adds(est))} more process memory than it holds now, and this machine has ${gb(free)} free, ` +
        `so it would be killed for lack of memory. ` +
        (good.length
          ? `These would fit: ${good.join("; ")}.`
          : "None of LoRA, gradient_checkpointing, precompute_ref_log_probs, a smaller batch or half the " +
            "max_length alone would fit: combine them, or use a machine with more memory.") +
        " Set WEBDPO_NO_MEMORY_CHECK=1 to run anyway.",
    );
  }

  private allPrecomputed(): boolean {
    return !!this.train_?.every((e) => e.ref) && (!this.eval_ || this.eval_.every((e) => e.ref));
  }

  private async precomputeReference(examples: Example[]): Promise<void> {
    const bs = this.args.precomputeRefBatchSize ?? this.args.perDeviceTrainBatchSize;
    for (let i = 0; i < examples.length; i += bs) {
      const chunk = examples.slice(i, i + bs);
      const values = await scope(() =>
        noGrad(() => {
          const { batch, shifted } = this.collate(chunk);
          const r = this.referenceLogps(batch, shifted);
          return concat([r.chosen, r.rejected]).toArray();
        })
      );
      chunk.forEach((e, k) => (e.ref = [values[k], values[chunk.length + k]]));
    }
  }

  private collate(examples: Example[]): { batch: PairBatch; shifted: Int32Array } {
    const batch = collate(examples.map((e) => e.row), {
      padTokenId: this.padId,
      labelPadTokenId: this.args.labelPadTokenId,
    });
    const shifted = shiftLabels(batch.labels, [2 * batch.B, batch.T], this.args.labelPadTokenId);
    return { batch, shifted };
  }

  // ------------------------------------------------------------------------------------------------------------
  // the step

  /** Per-sequence log-probs of a collated batch under `model` (recorded for backward when grad mode is on). */
  private logps(model: CausalLM, batch: PairBatch, shifted: Int32Array, policy: boolean): PairLogps {
    const a = this.args;
    const R = 2 * batch.B;
    const shape: [number, number] = [R, batch.T];
    const h = model.hiddenStates({ data: batch.inputIds, shape }, {
      attentionMask: { data: batch.attentionMask, shape },
    });
    const C = h.shape[2];
    const r = fusedLogProbsWithStats(reshape(h, [R * batch.T, C]), model.lmHeadWeight(), shifted, {
      ignoreIndex: a.labelPadTokenId,
    });
    const types = Array.isArray(a.lossType) ? a.lossType : [a.lossType];
    return pairLogps(
      { tokenLogps: r.logps, logitSum: r.logitSum, logSumP2: r.logSumP2 },
      {
        B: batch.B,
        T: batch.T,
        V: model.config.vocabSize,
        shifted,
        ignoreIndex: a.labelPadTokenId,
        ldAlpha: a.ldAlpha,
        useWeighting: policy && a.useWeighting,
        needNll: policy && (a.rpoAlpha !== null || types.includes("sft")),
        needLogits: policy,
      },
    );
  }

  /** Where the reference log-probs come from (precomputed values aside). */
  get referenceKind(): "none" | "model" | "adapters_disabled" | "adapter" {
    if (this.args.referenceFree) return "none";
    if (this.refModel || !this.lora) return "model";
    return this.lora.refAdapter === null ? "adapters_disabled" : "adapter";
  }

  /**
   * The reference's per-sequence log-probs (no gradients): the reference model, or for a LoRA policy without one
   * the policy itself with its adapters disabled or the reference adapter active (in eval mode).
   */
  private referenceLogps(batch: PairBatch, shifted: Int32Array): PairLogps {
    if (this.refModel) return noGrad(() => this.logps(this.refModel!, batch, shifted, false));
    if (!this.lora) throw new TrainingError("internal: no reference model for a reference log-prob");
    return inReference(
      this.model,
      this.lora.refAdapter,
      () => noGrad(() => this.logps(this.model, batch, shifted, false)),
    );
  }

  /**
   * Loss and metrics of one micro-batch. Returns the loss (for backward) and the packed metrics [METRIC_SLOTS]
   * kept alive outside the scope.
   */
  private microBatch(examples: Example[], training: boolean): { loss: Tensor; packed: Tensor } {
    const { batch, shifted } = this.collate(examples);
    let refC: Tensor | undefined, refR: Tensor | undefined;
    if (!this.args.referenceFree) {
      if (examples.every((e) => e.ref)) {
        refC = tensor(examples.map((e) => e.ref![0]), [batch.B]);
        refR = tensor(examples.map((e) => e.ref![1]), [batch.B]);
      } else {
        // first, in a scope of its own: the reference forward's activations are gone before the policy's exist
        ({ chosen: refC, rejected: refR } = scope(() => {
          const ref = this.referenceLogps(batch, shifted);
          return { chosen: ref.chosen, rejected: ref.rejected };
        }));
      }
    }
    const pol = this.logps(this.model, batch, shifted, true);
    const out = dpoLoss(
      {
        policyChosenLogps: pol.chosen,
        policyRejectedLogps: pol.rejected,
        referenceChosenLogps: refC,
        referenceRejectedLogps: refR,
        chosenLengths: pol.chosenLengths,
        rejectedLengths: pol.rejectedLengths,
        weights: pol.wpoWeights ?? undefined,
        nll: pol.nll ?? undefined,
      },
      this.args,
      { bcoState: this.bco ?? undefined, training },
    );
    const packed = noGrad(() =>
      concat([
        reshape(out.loss, [1]),
        out.metrics,
        reshape(pol.logitsChosen!, [1]),
        reshape(pol.logitsRejected!, [1]),
        pol.nll ? reshape(pol.nll, [1]) : tensor([0]),
      ])
    ).keep();
    return { loss: out.loss, packed };
  }

  // ------------------------------------------------------------------------------------------------------------
  // the loop

  private planSteps(): void {
    const a = this.args;
    const n = this.train_!.length;
    const batchesPerEpoch = Math.ceil(n / a.perDeviceTrainBatchSize);
    // an epoch's last optimizer step may take fewer than gradient_accumulation_steps micro-batches, so that
    // every example is used once per epoch
    const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / a.gradientAccumulationSteps));
    const maxSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * stepsPerEpoch);
    const s = this.state;
    s.stepsPerEpoch = stepsPerEpoch;
    s.maxSteps = maxSteps;
    s.numTrainEpochs = Math.ceil(maxSteps / stepsPerEpoch);
    s.loggingSteps = intervalSteps(a.loggingSteps, maxSteps);
    s.evalSteps = intervalSteps(a.evalSteps ?? a.loggingSteps, maxSteps);
    s.saveSteps = intervalSteps(a.saveSteps, maxSteps);
  }

  /** The seed of the data order (`data_seed`, else `seed`). */
  private get shuffleSeed(): number {
    return this.args.dataSeed ?? this.args.seed;
  }

  /** The order of the training examples in `epoch` (a seeded shuffle; the same for a resumed run). */
  epochOrder(epoch: number): number[] {
    const seed = this.shuffleSeed + 7919 * epoch;
    return new Generator(seed).shuffle(Array.from({ length: this.train_!.length }, (_, i) => i));
  }

  /** The data position after `step` optimizer steps from the start. */
  private positionAt(step: number): DataPosition {
    const per = this.args.gradientAccumulationSteps * this.args.perDeviceTrainBatchSize;
    return {
      epoch: Math.floor(step / this.state.stepsPerEpoch),
      cursor: (step % this.state.stepsPerEpoch) * per,
    };
  }

  private buildOptimizer(): void {
    const a = this.args;
    if (!this.optimizer) {
      // a LoRA policy: the trained adapter's tensors (and modules_to_save copies) only
      const named = namedTrainableParametersOf(this.model);
      if (named.length === 0) throw new TrainingError("the model has no trainable parameters");
      // as Hugging Face's Trainer: no weight decay for biases and norm weights
      const groups = weightDecayGroups(named, a.weightDecay).filter((g) => g.params.length > 0);
      this.optimizer = new AdamW(groups, {
        lr: a.learningRate,
        betas: [a.adamBeta1, a.adamBeta2],
        eps: a.adamEpsilon,
        weightDecay: a.weightDecay,
      });
    }
    if (!this.scheduler) {
      const kw = (a.lrSchedulerKwargs ?? {}) as {
        num_cycles?: number;
        min_lr?: number;
        min_lr_rate?: number;
      };
      this.scheduler = new LRScheduler(this.optimizer, {
        type: a.lrSchedulerType as SchedulerType,
        numTrainingSteps: this.state.maxSteps,
        warmupSteps: a.warmupSteps,
        warmupRatio: a.warmupRatio,
        numCycles: kw.num_cycles,
        minLr: kw.min_lr,
        minLrRate: kw.min_lr_rate,
      });
    }
  }

  private async emit<K extends keyof TrainerCallback>(
    hook: K,
    ...args: Parameters<NonNullable<TrainerCallback[K]>> extends [TrainerState, ...infer R] ? R : never
  ): Promise<void> {
    for (const cb of this.callbacks) {
      const f = cb[hook] as ((s: TrainerState, ...r: unknown[]) => void | Promise<void>) | undefined;
      if (f) await f.call(cb, this.state, ...args);
    }
  }

  /** Prints a line: above the progress bar when one is drawn, else to the log sink (the console by default). */
  private print(line: string): void {
    if (!this.progress?.log(line)) this.out(line);
  }

  /** Reads packed micro-batch metrics back (one readback), one row of METRIC_SLOTS values per micro-batch. */
  private async readPacks(packs: Tensor[]): Promise<number[][]> {
    if (packs.length === 0) return [];
    const all = await scope(() => concat(packs).toArray());
    const k = METRIC_SLOTS.length;
    return packs.map((_, i) => Array.from(all.subarray(i * k, (i + 1) * k)));
  }

  /** Averages packed micro-batch metrics (read back once) into TRL's metric names. */
  private async average(packs: Tensor[], prefix = ""): Promise<Record<string, number>> {
    if (packs.length === 0) return {};
    const rows = await this.readPacks(packs);
    const k = METRIC_SLOTS.length;
    const sums = new Array(k).fill(0);
    for (const row of rows) for (let j = 0; j < k; j++) sums[j] += row[j];
    const out: Record<string, number> = {};
    const ipoOnly = this.args.lossType === "ipo";
    METRIC_SLOTS.forEach((name, j) => {
      if (name.startsWith("bco/")) return;
      if (name === "nll_loss" && this.args.rpoAlpha === null) return;
      if (ipoOnly && name.startsWith("logps/")) return;
      out[prefix + name] = sums[j] / packs.length;
    });
    return out;
  }

  private check(step: number, values: Record<string, number>): void {
    for (const [k, v] of Object.entries(values)) {
      if (!Number.isFinite(v)) {
        throw new TrainingError(
          `step ${step}: ${k} is ${v}; training stopped (lower learning_rate, check the data, or set max_grad_norm)` +
            this.lastGoodCheckpointNote(),
        );
      }
    }
  }

  private lastGoodCheckpointNote(): string {
    return this.lastCheckpoint ? `; the last good checkpoint is ${this.lastCheckpoint}` : "";
  }

  /** Asks a running `train()` to stop after its current step: it saves a checkpoint and returns `interrupted`. */
  requestStop(): void {
    this.stopRequested = true;
  }

  private get stopping(): boolean {
    return this.stopRequested || (this.stopSignal?.aborted ?? false);
  }

  /** Ctrl-C: the first stops after the current step (with a checkpoint), a second one quits at once. */
  private listenForInterrupts(): () => void {
    if (!this.handleSignals) return () => {};
    let count = 0;
    const handler = () => {
      if (++count === 1) {
        this.stopRequested = true;
        this.print(
          "webdpo: interrupt received; saving a checkpoint after the current step (Ctrl-C again quits without saving)",
        );
      } else {
        this.print("webdpo: second interrupt; quitting without saving");
        Deno.exit(130);
      }
    };
    try {
      Deno.addSignalListener("SIGINT", handler);
    } catch {
      return () => {}; // a platform without SIGINT: requestStop() and stopSignal still work
    }
    return () => Deno.removeSignalListener("SIGINT", handler);
  }

  /** The checkpoint `resume_from_checkpoint` names (true: the latest complete one in output_dir), or null. */
  private async resumePath(): Promise<string | null> {
    const r = this.args.resumeFromCheckpoint as boolean | string | null;
    if (r === null || r === false) return null;
    const outDir = this.args.outputDir;
    if (r === true) {
      const { complete, incomplete } = await scanCheckpoints(outDir);
      for (const c of incomplete) {
        if (complete.length && c.step > complete[complete.length - 1].step) {
          this.print(`webdpo: skipping ${c.path}: incomplete (no ${c.missing.join(", ")})`);
        }
      }
      if (complete.length === 0) {
        throw new TrainingError(
          `resume_from_checkpoint: true, but ${outDir} holds no complete checkpoint-<step> folder; start ` +
            `without resume_from_checkpoint, or give the path of a checkpoint`,
        );
      }
      return complete[complete.length - 1].path;
    }
    const missing = await missingCheckpointFiles(r);
    if (missing.length) {
      const { complete } = await scanCheckpoints(r);
      throw new TrainingError(
        complete.length
          ? `resume_from_checkpoint: ${r} is an output folder, not a checkpoint; give one of its checkpoints ` +
            `(latest: ${
              complete[complete.length - 1].path
            }), or set output_dir to it and resume_from_checkpoint: true`
          : `resume_from_checkpoint: ${r} is not a complete checkpoint (no ${missing.join(", ")})`,
      );
    }
    return r;
  }

  /** Restores everything a checkpoint holds; returns the loop's own state (data position, log window). */
  private async restore(
    dir: string,
  ): Promise<{ position: DataPosition; window: number[][]; lossSum: number; lossCount: number }> {
    const F = CHECKPOINT_FILES;
    const s = this.state;
    const a = this.args;
    const path = (f: string) => `${dir}/${f}`;
    const ts = parseHfTrainerState(await readJson(path(F.trainerState)), path(F.trainerState));
    const rng = await readJson(path(F.rng));
    const ws = await readJson(path(F.webdpo));
    const sch = await readJson(path(F.scheduler));
    const n = numberField(rng, "num_train_examples", path(F.rng), true);
    const have = this.train_!.length;
    if (n !== have) {
      throw new TrainingError(
        `${dir}: the checkpoint was trained on ${n} examples, this training set has ${have}; resuming needs ` +
          `the same training set`,
      );
    }
    const savedSeed = numberField(rng, "shuffle_seed", path(F.rng), true);
    if (savedSeed !== this.shuffleSeed) {
      this.print(
        `webdpo: warning: the checkpoint's data order came from seed ${savedSeed}, this run's from ` +
          `${this.shuffleSeed}: the remaining batches will differ from the interrupted run's`,
      );
    }
    const position = {
      epoch: numberField(rng, "epoch", path(F.rng), true),
      cursor: numberField(rng, "examples_seen_in_epoch", path(F.rng), true),
    };
    const saved = await readJson(path(F.args));
    const now = a.toSnakeCase();
    const keys = [
      "per_device_train_batch_size",
      "gradient_accumulation_steps",
      "learning_rate",
      "loss_type",
      "beta",
    ];
    const differ = keys.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]));
    if (differ.length) {
      this.print(`webdpo: warning: resuming with a different ${differ.join(", ")} than the checkpoint's run`);
    }
    const window = ws.log_window;
    if (
      !Array.isArray(window) ||
      !window.every((r) => Array.isArray(r) && r.length === METRIC_SLOTS.length && r.every(Number.isFinite))
    ) {
      throw new TrainingError(
        `${path(F.webdpo)}: "log_window" must be a list of ${METRIC_SLOTS.length}-number rows`,
      );
    }
    // weights and optimizer state, in place (the optimizer holds the policy's tensors)
    await this.restorePolicy(dir);
    await loadOptimizer(path(F.optimizer), this.optimizer!);
    this.scheduler!.loadState({ stepCount: numberField(sch, "step_count", path(F.scheduler), true) });
    const hasBco = await exists(path(F.bco));
    if (this.bco) {
      if (hasBco) {
        const b = await readJson(path(F.bco));
        this.bco.load({
          mean: numberField(b, "mean", path(F.bco)),
          count: numberField(b, "count", path(F.bco), true),
        });
      } else if (ts.globalStep > 0) {
        throw new TrainingError(`${dir}: loss_type uses bco_pair but the checkpoint has no ${F.bco}`);
      }
    }
    if (await exists(path(F.ref))) {
      if (!this.refModel) {
        throw new TrainingError(
          `${dir} holds TR-DPO reference weights (${F.ref}) but this run has no reference model ` +
            `(reference_free or precompute_ref_log_probs)`,
        );
      }
      await loadTensorsInto(path(F.ref), this.refModel.namedParameters(), "the reference model");
    } else if (this.referenceParts() && typeof ws.reference_norm === "number") {
      const norm = await this.weightNorm(this.referenceParts()!);
      if (norm !== ws.reference_norm) {
        this.print(
          `webdpo: warning: the reference model differs from the checkpoint's run (weight norm ${norm}, was ` +
            `${ws.reference_norm}); pass the model the run started from (not the checkpoint's), since the ` +
            `frozen reference is a copy of it`,
        );
      }
    }
    s.globalStep = ts.globalStep;
    s.epoch = s.globalStep / s.stepsPerEpoch;
    s.logHistory.splice(0, s.logHistory.length, ...ts.logHistory);
    s.bestMetric = ts.bestMetric;
    s.bestModelCheckpoint = ts.bestModelCheckpoint;
    this.bestStep = typeof ws.best_step === "number" ? ws.best_step : null;
    this.print(`webdpo: resuming from ${dir} at step ${s.globalStep}`);
    return {
      position,
      window: window as number[][],
      lossSum: numberField(ws, "train_loss_sum", path(F.webdpo)),
      lossCount: numberField(ws, "train_loss_count", path(F.webdpo), true),
    };
  }

  /** Loads a checkpoint's policy weights in place: the model, or for a LoRA run the trained adapter. */
  private async restorePolicy(dir: string): Promise<void> {
    const F = CHECKPOINT_FILES;
    const isAdapter = await exists(`${dir}/${ADAPTER_CONFIG}`);
    if (!this.lora) {
      if (isAdapter) {
        throw new TrainingError(
          `${dir} holds a LoRA adapter (${ADAPTER_CONFIG}), but this run trains the full model; resume it with the ` +
            `same LoRA setup (peftConfig, or use_peft: true and the same lora_* keys)`,
        );
      }
      await loadTensorsInto(`${dir}/${F.model}`, this.model.namedParameters(), "the policy model");
      return;
    }
    if (!isAdapter) {
      throw new TrainingError(
        `${dir} holds a full model, but this run trains a LoRA adapter; resume it without LoRA (no peftConfig / ` +
          `use_peft), as it was trained`,
      );
    }
    const saved = await readJson(`${dir}/${ADAPTER_CONFIG}`);
    const cfg = this.lora.lora.adapter(this.lora.trainAdapter).config;
    const now: Record<string, unknown> = {
      lora_alpha: cfg.loraAlpha,
      lora_dropout: cfg.loraDropout,
      use_rslora: cfg.useRslora,
      rank_pattern: cfg.rankPattern,
      alpha_pattern: cfg.alphaPattern,
    };
    const differ = Object.keys(now).filter((k) =>
      k in saved && JSON.stringify(saved[k]) !== JSON.stringify(now[k])
    );
    if (differ.length) {
      const keys = differ.join(", ");
      this.print(
        `webdpo: warning: the adapter being trained has a different ${keys} than the checkpoint's ` +
          `(${dir}/${ADAPTER_CONFIG})`,
      );
    }
    await loadTensorsInto(`${dir}/${ADAPTER_WEIGHTS}`, adapterFileTensors(this.lora), "the LoRA adapter");
  }

  /** The L2 norm of a list of tensors (NaN or Inf when one holds a non-finite value), one per tensor. */
  private async tensorNorms(tensors: Tensor[]): Promise<Float32Array> {
    const list = tensors.filter((t) => t.size > 0);
    if (list.length === 0) return new Float32Array(0);
    // gradNorm reduces `.grad`: hand it each tensor as the gradient of a stand-in parameter
    return await scope(() =>
      concat(list.map((t) => gradNorm([{ grad: t, size: t.size } as unknown as Tensor]))).toArray()
    );
  }

  private async weightNorm(tensors: Tensor[]): Promise<number> {
    const norms = await this.tensorNorms(tensors);
    return Math.sqrt(norms.reduce((acc, x) => acc + x * x, 0));
  }

  /** Refuses to checkpoint weights that hold NaN or Inf (a step that spoiled them must not save). */
  private async assertFiniteWeights(step: number): Promise<void> {
    const named = (this.lora ? namedTrainableParametersOf(this.model) : this.model.namedParameters())
      .filter(([, t]) => t.size > 0);
    const norms = await this.tensorNorms(named.map(([, t]) => t));
    const bad = named.findIndex((_, i) => !Number.isFinite(norms[i]));
    if (bad >= 0) {
      const [name] = named[bad];
      throw new TrainingError(
        `step ${step}: the weights hold non-finite values (${name}: norm ${norms[bad]}); no checkpoint was ` +
          `saved (lower learning_rate or set max_grad_norm)${this.lastGoodCheckpointNote()}`,
      );
    }
  }

  /** Whether the reference weights differ from the initial model's (TR-DPO synced them at least once). */
  private refChanged(): boolean {
    const a = this.args;
    return a.syncRefModel && this.refModel !== null && this.state.globalStep >= a.refModelSyncSteps &&
      a.refModelSyncSteps > 0;
  }

  /** Writes `output_dir/checkpoint-<step>` atomically, prunes old ones, calls onSave. */
  private async saveCheckpoint(
    ctx: { position: DataPosition; window: Tensor[]; lossSum: number; lossCount: number },
  ): Promise<string> {
    const a = this.args;
    const s = this.state;
    const F = CHECKPOINT_FILES;
    await this.assertFiniteWeights(s.globalStep);
    if (this.bestStep === s.globalStep) {
      s.bestModelCheckpoint = `${a.outputDir}/${checkpointDirName(s.globalStep)}`;
    }
    const windowRows = await this.readPacks(ctx.window);
    const bco = this.bco ? await this.bco.read() : null;
    const refChanged = this.refChanged();
    const refParts = this.referenceParts();
    const refNorm = refParts && !refChanged ? await this.weightNorm(refParts) : null;
    const tokenizer = typeof this.tokenizer.save === "function" ? this.tokenizer as Tokenizer : undefined;
    const opt = this.optimizer!;
    const sched = this.scheduler!;
    const dir = await commitCheckpoint(a.outputDir, s.globalStep, async (tmp) => {
      await this.writePolicy(tmp, tokenizer);
      await writeOptimizer(`${tmp}/${F.optimizer}`, opt);
      await writeJson(`${tmp}/${F.scheduler}`, {
        step_count: sched.stepCount,
        last_epoch: sched.stepCount,
        lr_scheduler_type: a.lrSchedulerType,
        base_lrs: opt.groups.map((g) => g.initialLr),
        last_lr: sched.lastLr(),
      });
      await writeJson(`${tmp}/${F.rng}`, {
        seed: a.seed,
        data_seed: a.dataSeed,
        shuffle_seed: this.shuffleSeed,
        epoch: ctx.position.epoch,
        examples_seen_in_epoch: ctx.position.cursor,
        num_train_examples: this.train_!.length,
        order: "epoch e visits the examples in the order Generator(shuffle_seed + 7919 * e).shuffle([0, n))",
      });
      if (bco) await writeJson(`${tmp}/${F.bco}`, bco);
      if (refChanged) await writeTensors(`${tmp}/${F.ref}`, this.refModel!.namedParameters());
      await writeJson(`${tmp}/${F.args}`, a.toSnakeCase());
      await writeJson(`${tmp}/${F.webdpo}`, {
        format: 1,
        global_step: s.globalStep,
        metric_slots: METRIC_SLOTS,
        log_window: windowRows,
        train_loss_sum: ctx.lossSum,
        train_loss_count: ctx.lossCount,
        best_step: this.bestStep,
        reference_norm: refNorm,
      });
      await writeJson(`${tmp}/${F.trainerState}`, hfTrainerState(s));
    });
    this.lastCheckpoint = dir;
    if (a.saveTotalLimit !== null) {
      await pruneCheckpoints(a.outputDir, a.saveTotalLimit, [dir, s.bestModelCheckpoint]);
    }
    await this.emit("onSave", dir);
    return dir;
  }

  /** The tensors whose norm a checkpoint records to notice a different reference on resume, or null. */
  private referenceParts(): Tensor[] | null {
    if (this.refModel) return this.refModel.parameters();
    if (this.lora && !this.args.referenceFree) return referenceTensors(this.model, this.lora);
    return null;
  }

  /**
   * Writes the trained policy to `dir`: the model (config.json, model.safetensors), or for a LoRA run the adapter as
   * a PEFT folder (adapter_config.json, adapter_model.safetensors); the tokenizer files alongside when given.
   */
  private async writePolicy(dir: string, tokenizer: Tokenizer | undefined): Promise<void> {
    if (this.lora) {
      await saveAdapter(this.model, dir, this.lora.trainAdapter);
      if (tokenizer) await tokenizer.save(dir);
    } else {
      await saveModel(this.model, dir, { tokenizer });
    }
  }

  /** Runs training to `max_steps` (or `num_train_epochs`), resuming first when `resume_from_checkpoint` is set. */
  async train(): Promise<TrainOutput> {
    const started = performance.now();
    await this.prepare();
    this.planSteps();
    this.buildOptimizer();
    const a = this.args;
    const s = this.state;
    const opt = this.optimizer!;
    const sched = this.scheduler!;
    const bs = a.perDeviceTrainBatchSize;
    const gas = a.gradientAccumulationSteps;
    this.stopRequested = false;
    let window: Tensor[] = [];
    let lastNorm: Tensor | null = null;
    let pending: { step: number; values: Promise<Float32Array> } | null = null;
    let lossSum = 0;
    let lossCount = 0;
    let interrupted = false;
    let savedNow: string | null = null;
    const stopListening = this.listenForInterrupts();
    try {
      const resume = await this.resumePath();
      let pos = this.positionAt(s.globalStep);
      if (resume) {
        const r = await this.restore(resume);
        pos = r.position;
        window = r.window.map((row) => tensor(row, [METRIC_SLOTS.length]).keep());
        lossSum = r.lossSum;
        lossCount = r.lossCount;
        this.lastCheckpoint = resume;
      }
      await removeTemporaryCheckpoints(a.outputDir);
      await this.metricsLog.start(resume ? s.globalStep : null);
      await this.generationsLog.start(resume ? s.globalStep : null);
      const firstStep = s.globalStep;
      this.progress = new Progress(s.maxSteps, !a.disableTqdm, this.progressStream ?? Deno.stderr, firstStep);
      await this.emit("onTrainBegin");
      let order = this.epochOrder(pos.epoch);
      while (s.globalStep < s.maxSteps) {
        if (pos.cursor >= order.length) {
          pos = { epoch: pos.epoch + 1, cursor: 0 };
          order = this.epochOrder(pos.epoch);
        }
        // one optimizer step: up to `gas` micro-batches of this epoch
        const micro: Example[][] = [];
        for (let m = 0; m < gas && pos.cursor < order.length; m++) {
          micro.push(order.slice(pos.cursor, pos.cursor + bs).map((i) => this.train_![i]));
          pos = { epoch: pos.epoch, cursor: pos.cursor + bs };
        }
        for (const [m, examples] of micro.entries()) {
          if (this.lora) seedLoraDropout(this.lora, a.seed, s.globalStep, m);
          const packed = scope(() => {
            const { loss, packed } = this.microBatch(examples, true);
            scale(loss, 1 / micro.length).backward(undefined, { releaseGraph: true });
            return packed;
          });
          window.push(packed);
        }
        const normInfo = scope(() => opt.clipAndStep(a.maxGradNorm).keep());
        opt.zeroGrad();
        // free buffers this step did not take back are given back: what the pool holds does not grow with the steps
        trimPool();
        const lr = sched.lastLr()[0];
        sched.step();
        s.globalStep++;
        s.epoch = s.globalStep / s.stepsPerEpoch;
        if (a.syncRefModel && this.refModel && isSyncStep(s.globalStep, a.refModelSyncSteps)) {
          mixInto(this.refModel.parameters(), this.model.parameters(), a.refModelMixupAlpha);
        }
        lastNorm?.dispose();
        lastNorm = normInfo;
        // the previous step's loss and norm are checked now (their readback overlapped this step)
        if (pending) {
          const v = await pending.values;
          this.check(pending.step, { loss: v[0], grad_norm: v[1] });
          this.progress.update(pending.step, { loss: v[0] });
        }
        const lastPack = window[window.length - 1];
        pending = {
          step: s.globalStep,
          values: scope(() => concat([reshape(lastPack, [METRIC_SLOTS.length]), normInfo]).toArray()).then((
            x,
          ) => Float32Array.of(x[0], x[x.length - 1])),
        };
        await this.emit("onStepEnd");
        const isLog = s.globalStep % s.loggingSteps === 0 || (a.loggingFirstStep && s.globalStep === 1) ||
          s.globalStep === s.maxSteps;
        if (isLog) {
          const metrics = await this.average(window);
          const norm = await lastNorm.item();
          const entry: Record<string, number> = {
            ...pick(metrics, "loss"),
            grad_norm: norm,
            learning_rate: lr,
            ...omit(metrics, "loss"),
            epoch: round(s.epoch),
            step: s.globalStep,
          };
          this.check(s.globalStep, { loss: entry.loss, grad_norm: norm });
          lossSum += entry.loss * window.length;
          lossCount += window.length;
          for (const p of window) p.dispose();
          window = [];
          s.logHistory.push(entry);
          this.print(formatLogLine(entry));
          await this.metricsLog.append(entry);
          this.progress.update(s.globalStep, entry);
          await this.emit("onLog", entry);
        }
        const evalNow = this.eval_ && (a.evalStrategy === "steps" && s.globalStep % s.evalSteps === 0 ||
          a.evalStrategy === "epoch" && s.globalStep % s.stepsPerEpoch === 0);
        if (evalNow) await this.evaluate();
        const stop = this.stopping && s.globalStep < s.maxSteps;
        const saveNow = stop ||
          a.saveStrategy === "steps" && (s.globalStep % s.saveSteps === 0 || s.globalStep === s.maxSteps) ||
          a.saveStrategy === "epoch" && (s.globalStep % s.stepsPerEpoch === 0 || s.globalStep === s.maxSteps);
        if (saveNow) {
          // this step's loss and gradient norm must be finite before anything is saved
          const v = await pending.values;
          this.check(pending.step, { loss: v[0], grad_norm: v[1] });
          pending = null;
          savedNow = await this.saveCheckpoint({ position: pos, window, lossSum, lossCount });
        }
        if (stop) {
          interrupted = true;
          break;
        }
      }
      if (pending) {
        const v = await pending.values;
        this.check(pending.step, { loss: v[0], grad_norm: v[1] });
      }
      const trainingLoss = lossCount ? lossSum / lossCount : NaN;
      const runtime = (performance.now() - started) / 1000;
      const steps = s.globalStep - firstStep;
      const metrics: Record<string, number> = {
        train_runtime: round(runtime),
        train_samples_per_second: round((steps * bs * gas) / runtime),
        train_steps_per_second: round(steps / runtime),
        train_loss: trainingLoss,
        epoch: round(s.epoch),
      };
      if (interrupted) {
        this.print(
          `webdpo: training interrupted at step ${s.globalStep}/${s.maxSteps}; checkpoint saved to ${savedNow}. ` +
            `Resume with --resume_from_checkpoint ${savedNow} (or resume_from_checkpoint: true for the latest ` +
            `checkpoint in ${a.outputDir})`,
        );
      } else {
        this.print(formatLogLine(metrics));
        await this.metricsLog.append({ ...metrics, step: s.globalStep });
      }
      await this.emit("onTrainEnd");
      return { globalStep: s.globalStep, trainingLoss, metrics, interrupted, checkpoint: savedNow };
    } finally {
      for (const p of window) p.dispose();
      lastNorm?.dispose();
      stopListening();
      this.progress?.close();
      this.progress = null;
    }
  }

  /** Evaluates on the eval dataset: TRL's metrics with the eval_ prefix (logged and returned). */
  async evaluate(): Promise<Record<string, number>> {
    await this.prepare();
    if (!this.eval_) throw new TrainingError("evaluate(): no evalDataset was given");
    const bs = this.args.perDeviceEvalBatchSize;
    const packs: Tensor[] = [];
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      for (let i = 0; i < this.eval_.length; i += bs) {
        const examples = this.eval_.slice(i, i + bs);
        packs.push(scope(() => noGrad(() => this.microBatch(examples, false).packed)));
      }
      const metrics = await this.average(packs, "eval_");
      if (this.computeMetrics) {
        for (const [k, v] of Object.entries(this.computeMetrics(metrics))) {
          metrics[k.startsWith("eval_") ? k : `eval_${k}`] = v;
        }
      }
      const s = this.state;
      const entry = { ...metrics, epoch: round(s.epoch), step: s.globalStep };
      s.logHistory.push(entry);
      this.print(formatLogLine(entry));
      await this.metricsLog.append(entry);
      // best_metric: the lowest eval_loss (Hugging Face's default metric_for_best_model)
      if (Number.isFinite(metrics.eval_loss) && (s.bestMetric === null || metrics.eval_loss < s.bestMetric)) {
        s.bestMetric = metrics.eval_loss;
        this.bestStep = s.globalStep;
      }
      if (this.args.generateDuringEval) await this.generateSamples();
      await this.emit("onEvaluate", metrics);
      return metrics;
    } finally {
      for (const p of packs) p.dispose();
      this.model.train(wasTraining);
    }
  }

  /**
   * generate_during_eval: greedy completions of the first eval prompts by the policy and by the reference, printed
   * as a table and appended to output_dir/generations.jsonl.
   */
  private async generateSamples(): Promise<void> {
    const tok = this.tokenizer as unknown as Tokenizer;
    const examples = this.eval_!.slice(0, GENERATION_PROMPTS);
    const prompts = examples.map((e) => e.row.prompt_input_ids);
    const longest = Math.max(...prompts.map((p) => p.length));
    const maxNewTokens = Math.min(GENERATION_TOKENS, this.model.config.maxPositionEmbeddings - longest);
    if (maxNewTokens < 1) return;
    const policy = await generate(this.model, tok, prompts, { maxNewTokens });
    const kind = this.referenceKind;
    const reference = this.refModel
      ? await generate(this.refModel, tok, prompts, { maxNewTokens })
      : this.lora && (kind === "adapters_disabled" || kind === "adapter")
      ? await inReference(this.model, this.lora.refAdapter, () =>
        generate(this.model, tok, prompts, { maxNewTokens }))
      : null;
    const s = this.state;
    const rows = examples.map((_, i) => ({
      prompt: tok.decode(prompts[i], { skipSpecialTokens: true }),
      policy: policy.texts[i],
      reference: reference ? reference.texts[i] : null,
    }));
    this.print(`generations at step ${s.globalStep} (greedy, ${maxNewTokens} new tokens at most):`);
    for (const line of textTable(rows, reference ? "" : " (no reference model)")) this.print(line);
    for (const r of rows) {
      await this.generationsLog.append({ step: s.globalStep, epoch: round(s.epoch), ...r });
    }
  }

  /**
   * Saves the policy to `dir` (default `output_dir`) with the tokenizer files: config.json + model.safetensors, or
   * for a LoRA run the trained adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors, loadable
   * by `peft`). For a full model from a LoRA run, merge first: `mergeAdapter(model)` then `saveModel` (with an int8
   * base, `dequantizeBase(model)` before merging).
   */
  async save(dir: string = this.args.outputDir): Promise<void> {
    await this.writePolicy(
      dir,
      typeof this.tokenizer.save === "function" ? this.tokenizer as Tokenizer : undefined,
    );
  }

  /** Releases the reference copy the trainer made (the policy belongs to the caller). */
  dispose(): void {
    if (this.ownsRef) this.refModel?.dispose();
    this.refModel = null;
    this.bco?.dispose();
  }
}

/** A three-column text table of generations (cells escaped to one line and cut at 40 characters). */
function textTable(
  rows: { prompt: string; policy: string; reference: string | null }[],
  note: string,
): string[] {
  const header = ["prompt", "policy", `reference${note}`];
  const cells = rows.map((r) => [r.prompt, r.policy, r.reference ?? "-"].map(oneLine));
  const widths = header.map((h, j) => Math.max(h.length, ...cells.map((c) => c[j].length)));
  const line = (c: string[]) => `| ${c.map((x, j) => x.padEnd(widths[j])).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)];
}

function oneLine(s: string): string {
  const t = JSON.stringify(s).slice(1, -1);
  return t.length > 40 ? t.slice(0, 39) + "…" : t;
}

function pick(o: Record<string, number>, k: string): Record<string, number> {
  return k in o ? { [k]: o[k] } : {};
}

function omit(o: Record<string, number>, k: string): Record<string, number> {
  const r = { ...o };
  delete r[k];
  return r;
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
