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
  tokenizeRow,
} from "../data/tokenize_row.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { init } from "../gpu/init.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { cloneModel } from "../models/clone.ts";
import { saveModel } from "../models/loader.ts";
import { AdamW } from "../optim/adamw.ts";
import { clipGradNorm, gradNorm } from "../optim/grad_norm.ts";
import { LRScheduler, type SchedulerType } from "../optim/schedule.ts";
import { tensor } from "../tensor/create.ts";
import { Generator } from "../tensor/random.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type DPOConfig, intervalSteps } from "./config.ts";
import { type PairLogps, pairLogps } from "./batch.ts";
import { BcoRunningMean, DPO_LOSS_METRICS, dpoLoss } from "./loss.ts";
import { Progress } from "./progress.ts";
import { isSyncStep, mixInto } from "./sync_ref.ts";

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
  /** LoRA configuration (not supported yet: an error). */
  peftConfig?: unknown;
  /** Where progress and log lines go (tests pass a sink); default the console. */
  log?: (line: string) => void;
}

/** The result of `train()`. */
export interface TrainOutput {
  globalStep: number;
  trainingLoss: number;
  metrics: Record<string, number>;
}

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

  constructor(opts: DPOTrainerOptions) {
    if (opts.peftConfig !== undefined && opts.peftConfig !== null) {
      throw new TrainingError(
        "peftConfig: LoRA training is not supported in this version yet (see the README)",
      );
    }
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
    if (a.modelAdapterName || a.refAdapterName || a.forceUseRefModel) {
      throw new TrainingError(
        "model_adapter_name / ref_adapter_name / force_use_ref_model need LoRA adapters, which this version does " +
          "not support yet",
      );
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
    for await (const r of data) {
      const row = tokenizeRow(r.row, this.tokenizer, opts, r.where);
      const scored = (ids: number[]) => ids.slice(1).some((l) => l !== a.labelPadTokenId);
      if (!scored(row.chosen_labels) || !scored(row.rejected_labels)) {
        throw new DatasetError(`${r.where}: a completion has no token left to score after truncation`);
      }
      out.push({ row, where: r.where });
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
    for (const p of this.model.parameters()) p.requiresGrad = true;
    this.model.gradientCheckpointing = this.args.gradientCheckpointing;
    this.model.train();
    if (
      !this.args.referenceFree && !this.refModel &&
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
      if (this.ownsRef) {
        this.refModel!.dispose();
        this.refModel = null;
        this.ownsRef = false;
      }
    }
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
          const r = this.logps(this.refModel!, batch, shifted, false);
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

  /**
   * Loss and metrics of one micro-batch. Returns the loss (for backward) and the packed metrics [METRIC_SLOTS]
   * kept alive outside the scope.
   */
  private microBatch(examples: Example[], training: boolean): { loss: Tensor; packed: Tensor } {
    const { batch, shifted } = this.collate(examples);
    const pol = this.logps(this.model, batch, shifted, true);
    let refC: Tensor | undefined, refR: Tensor | undefined;
    if (!this.args.referenceFree) {
      if (examples.every((e) => e.ref)) {
        refC = tensor(examples.map((e) => e.ref![0]), [batch.B]);
        refR = tensor(examples.map((e) => e.ref![1]), [batch.B]);
      } else {
        const ref = noGrad(() => this.logps(this.refModel!, batch, shifted, false));
        refC = ref.chosen;
        refR = ref.rejected;
      }
    }
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
    const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / a.gradientAccumulationSteps));
    const maxSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * stepsPerEpoch);
    const s = this.state;
    s.stepsPerEpoch = stepsPerEpoch;
    s.maxSteps = maxSteps;
    s.numTrainEpochs = Math.ceil(maxSteps / stepsPerEpoch);
    s.loggingSteps = intervalSteps(a.loggingSteps, maxSteps);
    s.evalSteps = intervalSteps(a.evalSteps ?? a.loggingSteps, maxSteps);
    s.saveSteps = intervalSteps(a.saveSteps, maxSteps);
  }

  /** The order of the training examples in `epoch` (a seeded shuffle; the same for a resumed run). */
  epochOrder(epoch: number): number[] {
    const seed = (this.args.dataSeed ?? this.args.seed) + 7919 * epoch;
    return new Generator(seed).shuffle(Array.from({ length: this.train_!.length }, (_, i) => i));
  }

  private buildOptimizer(): void {
    const a = this.args;
    if (!this.optimizer) {
      const params = this.model.trainableParameters();
      if (params.length === 0) throw new TrainingError("the model has no trainable parameters");
      this.optimizer = new AdamW(params, {
        lr: a.learningRate,
        betas: [a.adamBeta1, a.adamBeta2],
        eps: a.adamEpsilon,
        weightDecay: a.weightDecay,
      });
    }
    if (!this.scheduler) {
      const kw = (a.lrSchedulerKwargs ?? {}) as { min_lr?: number; min_lr_rate?: number };
      this.scheduler = new LRScheduler(this.optimizer, {
        type: a.lrSchedulerType as SchedulerType,
        numTrainingSteps: this.state.maxSteps,
        warmupSteps: a.warmupSteps,
        warmupRatio: a.warmupRatio,
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

  /** Averages packed micro-batch metrics (read back once) into TRL's metric names. */
  private async average(packs: Tensor[], prefix = ""): Promise<Record<string, number>> {
    if (packs.length === 0) return {};
    const all = await scope(() => concat(packs).toArray());
    const k = METRIC_SLOTS.length;
    const sums = new Array(k).fill(0);
    for (let i = 0; i < packs.length; i++) for (let j = 0; j < k; j++) sums[j] += all[i * k + j];
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
          `step ${step}: ${k} is ${v}; training stopped (lower learning_rate, check the data, or set max_grad_norm)`,
        );
      }
    }
  }

  /** Runs training to `max_steps` (or `num_train_epochs`). */
  async train(): Promise<TrainOutput> {
    await this.prepare();
    this.planSteps();
    this.buildOptimizer();
    const a = this.args;
    const s = this.state;
    const opt = this.optimizer!;
    const sched = this.scheduler!;
    const params = opt.params;
    const progress = new Progress(s.maxSteps, !a.disableTqdm);
    const log = (entry: Record<string, number>) => {
      if (!a.disableTqdm && Deno.stderr.isTerminal()) progress.log(entry);
      else this.out(Object.entries(entry).map(([k, v]) => `${k}=${fmt(v)}`).join("  "));
    };
    await this.emit("onTrainBegin");
    const bs = a.perDeviceTrainBatchSize;
    const gas = a.gradientAccumulationSteps;
    let window: Tensor[] = [];
    let lastNorm: Tensor | null = null;
    let pending: { step: number; values: Promise<Float32Array> } | null = null;
    let lossSum = 0;
    let lossCount = 0;
    const order: number[] = [];
    let epoch = Math.floor(s.globalStep / s.stepsPerEpoch);
    let cursor = (s.globalStep % s.stepsPerEpoch) * gas * bs;
    try {
      while (s.globalStep < s.maxSteps) {
        if (order.length === 0 || cursor >= order.length) {
          if (order.length > 0) epoch++;
          order.splice(0, order.length, ...this.epochOrder(epoch));
          if (cursor >= order.length) cursor = 0;
        }
        // one optimizer step: up to `gas` micro-batches of this epoch
        const micro: Example[][] = [];
        for (let m = 0; m < gas && cursor < order.length; m++) {
          micro.push(order.slice(cursor, cursor + bs).map((i) => this.train_![i]));
          cursor += bs;
        }
        for (const examples of micro) {
          const packed = scope(() => {
            const { loss, packed } = this.microBatch(examples, true);
            scale(loss, 1 / micro.length).backward();
            return packed;
          });
          window.push(packed);
        }
        const normInfo = scope(() => {
          if (a.maxGradNorm > 0) {
            const { norm, coef } = clipGradNorm(params, a.maxGradNorm);
            opt.step({ gradScale: coef });
            return norm.keep();
          }
          const norm = gradNorm(params);
          opt.step();
          return norm.keep();
        });
        opt.zeroGrad();
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
          progress.update(pending.step, { loss: v[0] });
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
          log(entry);
          progress.update(s.globalStep, entry);
          await this.emit("onLog", entry);
        }
        const evalNow = this.eval_ && (a.evalStrategy === "steps" && s.globalStep % s.evalSteps === 0 ||
          a.evalStrategy === "epoch" && s.globalStep % s.stepsPerEpoch === 0);
        if (evalNow) await this.evaluate();
      }
      if (pending) {
        const v = await pending.values;
        this.check(pending.step, { loss: v[0], grad_norm: v[1] });
      }
    } finally {
      for (const p of window) p.dispose();
      lastNorm?.dispose();
      progress.close();
    }
    const trainingLoss = lossCount ? lossSum / lossCount : NaN;
    await this.emit("onTrainEnd");
    return { globalStep: s.globalStep, trainingLoss, metrics: { train_loss: trainingLoss } };
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
      const entry = { ...metrics, epoch: round(this.state.epoch), step: this.state.globalStep };
      this.state.logHistory.push(entry);
      this.out(Object.entries(entry).map(([k, v]) => `${k}=${fmt(v)}`).join("  "));
      await this.emit("onEvaluate", metrics);
      return metrics;
    } finally {
      for (const p of packs) p.dispose();
      this.model.train(wasTraining);
    }
  }

  /** Saves the policy (config.json, model.safetensors, tokenizer files) to `dir` (default `output_dir`). */
  async save(dir: string = this.args.outputDir): Promise<void> {
    await saveModel(this.model, dir, {
      tokenizer: typeof this.tokenizer.save === "function" ? this.tokenizer as Tokenizer : undefined,
    });
  }

  /** Releases the reference copy the trainer made (the policy belongs to the caller). */
  dispose(): void {
    if (this.ownsRef) this.refModel?.dispose();
    this.refModel = null;
    this.bco?.dispose();
  }
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

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(4) : v.toFixed(4);
}
