/**
 * SFTTrainer: supervised fine-tuning of a causal LM (TRL's SFTTrainer, the subset webdpo needs to make an SFT
 * model to start DPO from) on the same model, kernels and optimizer as DPOTrainer.
 *
 * One optimizer step = `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size` rows. Per
 * micro-batch: right-padded batch → one forward to the final hidden states → `crossEntropy` through the fused
 * LM-head log-prob kernel (no [B, T, V] logits) over the shifted labels, which are -100 everywhere but the
 * scored tokens (the assistant turns of a conversation) → backward of loss / micro-batches. Then gradient-norm
 * clipping, fused AdamW, the LR schedule. The loss stays on the GPU and is read back once per logging step.
 */
import "../autograd/backward.ts";
import { noGrad } from "../autograd/grad_mode.ts";
import { concat } from "../autograd/ops/concat.ts";
import { crossEntropy } from "../autograd/ops/cross_entropy.ts";
import { shiftLabels } from "../autograd/ops/logprobs.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { scale } from "../autograd/ops/scale.ts";
import { scope } from "../autograd/scope.ts";
import { Dataset, type Row } from "../data/dataset.ts";
import { DatasetError } from "../data/tokenize_row.ts";
import { Progress } from "../dpo/progress.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { init } from "../gpu/init.ts";
import { trimPool } from "../gpu/queue.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { saveModel } from "../models/loader.ts";
import { AdamW } from "../optim/adamw.ts";
import { LRScheduler } from "../optim/schedule.ts";
import { Generator } from "../tensor/random.ts";
import { type Tensor, view } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { SFTConfig } from "./config.ts";
import { collateSft, type SFTBatch, type SFTExample, type SFTTokenizer, tokenizeSftRow } from "./data.ts";

/** An error that stops SFT training (a NaN loss, an unusable dataset, bad arguments). */
export class SFTTrainingError extends WebDPOError {}

/** The trainer's progress, as Hugging Face's TrainerState (camelCase). */
export interface SFTTrainerState {
  globalStep: number;
  /** Fractional epoch. */
  epoch: number;
  maxSteps: number;
  stepsPerEpoch: number;
  loggingSteps: number;
  /** Non-padding input tokens seen so far (TRL's `num_tokens`). */
  numTokens: number;
  /** Every log and evaluation. */
  logHistory: Record<string, number>[];
}

/** Hooks into the loop (any subset; each may be async). */
export interface SFTCallback {
  onLog?(state: SFTTrainerState, logs: Record<string, number>): void | Promise<void>;
  onStepEnd?(state: SFTTrainerState): void | Promise<void>;
}

export interface SFTTrainerOptions {
  model: CausalLM;
  args: SFTConfig;
  trainDataset: Dataset | Row[];
  evalDataset?: Dataset | Row[] | null;
  /** The tokenizer: encoding, chat template, BOS/EOS and the pad id. */
  tokenizer: (SFTTokenizer & { padTokenId: number | null }) | Tokenizer;
  callbacks?: SFTCallback[];
  /** Where log lines go (default the console). */
  log?: (line: string) => void;
}

export interface SFTTrainOutput {
  globalStep: number;
  /** Mean loss over the logged windows. */
  trainingLoss: number;
}

function toDataset(d: Dataset | Row[]): Dataset {
  return Array.isArray(d) ? Dataset.fromRows(d) : d;
}

export class SFTTrainer {
  readonly model: CausalLM;
  readonly args: SFTConfig;
  readonly tokenizer: SFTTokenizer & { padTokenId: number | null; save?(dir: string): Promise<void> };
  readonly callbacks: SFTCallback[];
  readonly state: SFTTrainerState;
  optimizer: AdamW | null = null;
  scheduler: LRScheduler | null = null;
  private readonly trainData: Dataset;
  private readonly evalData: Dataset | null;
  private readonly out: (line: string) => void;
  private readonly customLog: boolean;
  private train_: SFTExample[] | null = null;
  private eval_: SFTExample[] | null = null;
  private padId = 0;

  constructor(opts: SFTTrainerOptions) {
    if (!(opts.args instanceof SFTConfig)) {
      throw new SFTTrainingError(
        "args must be an SFTConfig (new SFTConfig({ learningRate, maxSteps, ... }))",
      );
    }
    if (!opts.model) throw new SFTTrainingError("model is required");
    if (!opts.tokenizer) throw new SFTTrainingError("tokenizer is required");
    this.model = opts.model;
    this.args = opts.args;
    this.tokenizer = opts.tokenizer as SFTTrainer["tokenizer"];
    this.callbacks = opts.callbacks ?? [];
    this.trainData = toDataset(opts.trainDataset);
    this.evalData = opts.evalDataset ? toDataset(opts.evalDataset) : null;
    this.out = opts.log ?? ((l) => console.log(l));
    this.customLog = opts.log !== undefined;
    this.state = {
      globalStep: 0,
      epoch: 0,
      maxSteps: 0,
      stepsPerEpoch: 0,
      loggingSteps: 0,
      numTokens: 0,
      logHistory: [],
    };
  }

  private async tokenizeAll(data: Dataset): Promise<SFTExample[]> {
    const a = this.args;
    const opts = {
      maxLength: a.maxLength,
      assistantOnlyLoss: a.assistantOnlyLoss,
      completionOnlyLoss: a.completionOnlyLoss,
      datasetTextField: a.datasetTextField,
      labelPadTokenId: a.labelPadTokenId,
    };
    const out: SFTExample[] = [];
    for await (const r of data) out.push(tokenizeSftRow(r.row, this.tokenizer, opts, r.where));
    if (out.length === 0) throw new DatasetError(`${data.name}: the dataset has no rows`);
    const V = this.model.config.vocabSize;
    for (const [i, e] of out.entries()) {
      const bad = e.inputIds.find((id) => !(id >= 0 && id < V));
      if (bad !== undefined) {
        throw new DatasetError(
          `${data.name} row ${i}: token id ${bad} is outside the model's vocabulary (size ${V}); ` +
            `the tokenizer does not match the model`,
        );
      }
    }
    return out;
  }

  private async prepare(): Promise<void> {
    await init();
    if (!this.train_) this.train_ = await this.tokenizeAll(this.trainData);
    if (this.evalData && !this.eval_) this.eval_ = await this.tokenizeAll(this.evalData);
    const pad = this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId;
    if (pad === null || pad === undefined) {
      throw new SFTTrainingError("the tokenizer has neither a pad nor an EOS token to pad batches with");
    }
    this.padId = pad;
  }

  /** The order of the training examples in `epoch` (a seeded shuffle). */
  epochOrder(epoch: number): number[] {
    const seed = (this.args.dataSeed ?? this.args.seed) + 7919 * epoch;
    return new Generator(seed).shuffle(Array.from({ length: this.train_!.length }, (_, i) => i));
  }

  /** The mean loss over the scored tokens of one batch (recorded for backward when grad mode is on). */
  private batchLoss(batch: SFTBatch): Tensor {
    const shape: [number, number] = [batch.B, batch.T];
    const h = this.model.hiddenStates({ data: batch.inputIds, shape }, {
      attentionMask: { data: batch.attentionMask, shape },
    });
    const C = h.shape[2];
    const labels = shiftLabels(batch.labels, shape, this.args.labelPadTokenId);
    return crossEntropy(reshape(h, [batch.B * batch.T, C]), this.model.lmHeadWeight(), labels, {
      ignoreIndex: this.args.labelPadTokenId,
    });
  }

  private collate(examples: SFTExample[]): SFTBatch {
    return collateSft(examples, { padTokenId: this.padId, labelPadTokenId: this.args.labelPadTokenId });
  }

  /** Runs training to `maxSteps` (or `numTrainEpochs`). */
  async train(): Promise<SFTTrainOutput> {
    await this.prepare();
    const a = this.args;
    const s = this.state;
    const n = this.train_!.length;
    const bs = a.perDeviceTrainBatchSize;
    const gas = a.gradientAccumulationSteps;
    // as the DPO trainer: an epoch's last optimizer step may take fewer micro-batches, so every row is used
    s.stepsPerEpoch = Math.max(1, Math.ceil(Math.ceil(n / bs) / gas));
    s.maxSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * s.stepsPerEpoch);
    s.loggingSteps = a.loggingSteps >= 1
      ? a.loggingSteps
      : Math.max(1, Math.ceil(a.loggingSteps * s.maxSteps));
    for (const p of this.model.parameters()) p.requiresGrad = true;
    this.model.gradientCheckpointing = a.gradientCheckpointing;
    this.model.train();
    const params = this.model.trainableParameters();
    this.optimizer ??= new AdamW(params, {
      lr: a.learningRate,
      betas: [a.adamBeta1, a.adamBeta2],
      eps: a.adamEpsilon,
      weightDecay: a.weightDecay,
    });
    this.scheduler ??= new LRScheduler(this.optimizer, {
      type: a.lrSchedulerType,
      numTrainingSteps: s.maxSteps,
      warmupSteps: a.warmupSteps,
      warmupRatio: a.warmupRatio,
    });
    const opt = this.optimizer, sched = this.scheduler;
    const progress = new Progress(s.maxSteps, !a.disableTqdm);
    const tty = !a.disableTqdm && !this.customLog && Deno.stderr.isTerminal();
    let window: Tensor[] = [];
    let lastNorm: Tensor | null = null;
    let lossSum = 0, lossCount = 0;
    let order: number[] = [];
    let epoch = 0;
    let cursor = 0;
    try {
      while (s.globalStep < s.maxSteps) {
        if (cursor >= order.length) {
          if (order.length > 0) epoch++;
          order = this.epochOrder(epoch);
          cursor = 0;
        }
        // one optimizer step: up to `gas` micro-batches of this epoch
        const micro: SFTExample[][] = [];
        for (let m = 0; m < gas && cursor < order.length; m++) {
          micro.push(order.slice(cursor, cursor + bs).map((i) => this.train_![i]));
          cursor += bs;
        }
        for (const examples of micro) {
          const batch = this.collate(examples);
          s.numTokens += batch.attentionMask.reduce((x, y) => x + y, 0);
          window.push(scope(() => {
            const loss = this.batchLoss(batch);
            const value = noGrad(() => view(loss, [1]));
            scale(loss, 1 / micro.length).backward(undefined, { releaseGraph: true });
            return value;
          }));
        }
        const norm = scope(() => opt.clipAndStep(a.maxGradNorm).keep());
        opt.zeroGrad();
        // free buffers this step did not take back are given back: what the pool holds does not grow with the steps
        trimPool();
        const lr = sched.lastLr()[0];
        sched.step();
        lastNorm?.dispose();
        lastNorm = norm;
        s.globalStep++;
        s.epoch = s.globalStep / s.stepsPerEpoch;
        for (const cb of this.callbacks) await cb.onStepEnd?.(s);
        progress.update(s.globalStep);
        const isLog = s.globalStep % s.loggingSteps === 0 || (a.loggingFirstStep && s.globalStep === 1) ||
          s.globalStep === s.maxSteps;
        if (!isLog) continue;
        const values = await scope(() => concat([...window, view(norm, [1])]).toArray());
        const losses = values.subarray(0, window.length);
        const loss = losses.reduce((x, y) => x + y, 0) / losses.length;
        const entry: Record<string, number> = {
          loss,
          grad_norm: values[values.length - 1],
          learning_rate: lr,
          num_tokens: s.numTokens,
          epoch: Math.round(s.epoch * 1e4) / 1e4,
          step: s.globalStep,
        };
        for (const k of ["loss", "grad_norm"]) {
          if (!Number.isFinite(entry[k])) {
            throw new SFTTrainingError(
              `step ${s.globalStep}: ${k} is ${
                entry[k]
              }; training stopped (lower learningRate, check the data, ` +
                `or set maxGradNorm)`,
            );
          }
        }
        lossSum += loss * window.length;
        lossCount += window.length;
        for (const t of window) t.dispose();
        window = [];
        s.logHistory.push(entry);
        if (tty) {
          // above the bar (redrawn at the next step); the bar lives on stderr
          Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${formatEntry(entry)}\n`));
        } else this.out(formatEntry(entry));
        progress.update(s.globalStep, entry);
        for (const cb of this.callbacks) await cb.onLog?.(s, entry);
      }
    } finally {
      for (const t of window) t.dispose();
      lastNorm?.dispose();
      progress.close();
    }
    return { globalStep: s.globalStep, trainingLoss: lossCount ? lossSum / lossCount : NaN };
  }

  /** The mean loss per scored token over the eval dataset (`eval_loss`), logged and returned. */
  async evaluate(): Promise<Record<string, number>> {
    await this.prepare();
    if (!this.eval_) throw new SFTTrainingError("evaluate(): no evalDataset was given");
    const bs = this.args.perDeviceEvalBatchSize;
    const wasTraining = this.model.training;
    this.model.eval();
    const losses: Tensor[] = [];
    const counts: number[] = [];
    try {
      for (let i = 0; i < this.eval_.length; i += bs) {
        const batch = this.collate(this.eval_.slice(i, i + bs));
        counts.push(batch.tokens);
        losses.push(scope(() => noGrad(() => view(this.batchLoss(batch), [1]))));
      }
      const values = await scope(() => concat(losses).toArray());
      let sum = 0;
      counts.forEach((c, k) => (sum += values[k] * c));
      const total = counts.reduce((x, y) => x + y, 0);
      const metrics = { eval_loss: sum / total };
      const entry = {
        ...metrics,
        epoch: Math.round(this.state.epoch * 1e4) / 1e4,
        step: this.state.globalStep,
      };
      this.state.logHistory.push(entry);
      this.out(formatEntry(entry));
      return metrics;
    } finally {
      for (const t of losses) t.dispose();
      this.model.train(wasTraining);
    }
  }

  /** Saves the model (config.json, model.safetensors) and the tokenizer files to `dir` (default `outputDir`). */
  async save(dir: string = this.args.outputDir): Promise<void> {
    const tok = typeof this.tokenizer.save === "function" ? this.tokenizer as Tokenizer : undefined;
    await saveModel(this.model, dir, { tokenizer: tok });
  }

  /** Releases the optimizer state (the model belongs to the caller). */
  dispose(): void {
    this.optimizer?.dispose();
    this.optimizer = null;
  }
}

function formatEntry(entry: Record<string, number>): string {
  return Object.entries(entry).map(([k, v]) => {
    if (!Number.isFinite(v) || Number.isInteger(v)) return `${k}=${v}`;
    const a = Math.abs(v);
    return `${k}=${a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(4) : v.toFixed(4)}`;
  }).join("  ");
}
