/**
 * SFTTrainer: supervised fine-tuning of a causal LM (TRL's SFTTrainer, the subset webdpo needs to make an SFT
 * model to start DPO from), as a loss over the training loop of src/train, the same loop DPOTrainer runs on:
 * epochs, accumulation, clipping, AdamW, the schedule, logging with its one-step-late NaN check, evaluation,
 * progress, callbacks and checkpoints are the loop's.
 *
 * Per micro-batch: right-padded batch → one forward to the final hidden states → `crossEntropy` through the fused
 * LM-head log-prob kernel (no [B, T, V] logits) over the shifted labels, which are -100 everywhere but the scored
 * tokens (the assistant turns of a conversation). Its metric pack is the mean loss per scored token and the number
 * of scored tokens: a log's `loss` is the mean over the window's micro-batches (as TRL's), `eval_loss` the mean
 * over every scored token of the eval set. Logs add `num_tokens`, the non-padding input tokens trained on so far.
 *
 * SFTConfig has every training argument the loop reads (src/config/training.ts): evaluation, checkpoints (with
 * `num_tokens` added), metrics.jsonl and `resumeFromCheckpoint` work as in DPO, but an SFT run saves and writes
 * metrics.jsonl only when asked (`saveStrategy` "no" and `reportTo` ["none"] by default), and Ctrl-C is not
 * caught unless `handleSignals` is set (a stop request saves a checkpoint to `outputDir`).
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { concat } from "../autograd/ops/concat.ts";
import { crossEntropy } from "../autograd/ops/cross_entropy.ts";
import { shiftLabels } from "../autograd/ops/labels.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { snakeToCamel } from "../config/field.ts";
import type { Dataset, Row } from "../data/dataset.ts";
import { DatasetError } from "../data/tokenize_row.ts";
import { init } from "../gpu/init.ts";
import { type CausalLM, labelRows } from "../models/causal_lm.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { meanRows } from "../train/metric_window.ts";
import { CHECKPOINT_FILES, countField } from "../train/checkpoint.ts";
import type { CheckpointExtras, MicroBatchOutput, TrainerOptions } from "../train/options.ts";
import {
  initialTrainerState,
  type TrainerCallback,
  type TrainerState,
  TrainingError,
  type TrainOutput,
} from "../train/state.ts";
import { Trainer } from "../train/trainer.ts";
import { SFTConfig } from "./config.ts";
import { collateSft, type SFTBatch, type SFTExample, type SFTTokenizer, tokenizeSftRow } from "./data.ts";

/** An error that stops SFT training (a NaN loss, an unusable dataset, bad arguments). */
export class SFTTrainingError extends TrainingError {}

/** The trainer's progress, as Hugging Face's TrainerState (camelCase), with TRL's token count. */
export interface SFTTrainerState extends TrainerState {
  /** Non-padding input tokens seen so far (TRL's `num_tokens`). */
  numTokens: number;
}

/** Hooks into the loop (any subset; each may be async). */
export type SFTCallback = TrainerCallback<SFTTrainerState>;

export interface SFTTrainerOptions extends TrainerOptions<SFTTrainerState> {
  model: CausalLM;
  args: SFTConfig;
  trainDataset: Dataset | Row[];
  evalDataset?: Dataset | Row[] | null;
  /** The tokenizer: encoding, chat template, BOS/EOS and the pad id. */
  tokenizer: (SFTTokenizer & { padTokenId: number | null }) | Tokenizer;
}

/** The result of `train()`; `trainingLoss` is the mean loss over the logged windows. */
export type SFTTrainOutput = TrainOutput;

/** A micro-batch's pack: its mean loss per scored token, and how many tokens were scored. */
const METRIC_SLOTS = ["loss", "tokens"] as const;

export class SFTTrainer extends Trainer<SFTExample, SFTTrainerState> {
  declare readonly tokenizer: SFTTokenizer & { padTokenId: number | null; save?(dir: string): Promise<void> };
  readonly args: SFTConfig;
  protected readonly metricSlots = METRIC_SLOTS;
  private padId = 0;

  constructor(opts: SFTTrainerOptions) {
    if (!(opts.args instanceof SFTConfig)) {
      throw new SFTTrainingError(
        "args must be an SFTConfig (new SFTConfig({ learningRate, maxSteps, ... }))",
      );
    }
    if (!opts.model) throw new SFTTrainingError("model is required");
    if (!opts.tokenizer) throw new SFTTrainingError("tokenizer is required");
    super({
      ...opts,
      trainingArgs: opts.args,
      state: { ...initialTrainerState(opts.args.perDeviceTrainBatchSize), numTokens: 0 },
      handleSignals: opts.handleSignals ?? false,
    });
    this.args = opts.args;
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

  protected async prepare(forTraining: boolean): Promise<void> {
    await init();
    this.trainExamples ??= await this.tokenizeAll(this.trainData);
    if (this.evalData && !this.evalExamples) this.evalExamples = await this.tokenizeAll(this.evalData);
    const pad = this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId;
    if (pad === null || pad === undefined) {
      throw new SFTTrainingError("the tokenizer has neither a pad nor an EOS token to pad batches with");
    }
    this.padId = pad;
    if (forTraining) this.setUpModelForTraining(true, this.args.gradientCheckpointing);
  }

  /** The mean loss over the scored tokens of one batch (recorded for backward when grad mode is on). */
  private batchLoss(batch: SFTBatch): Tensor {
    const shape: [number, number] = [batch.B, batch.T];
    const ignore = this.args.labelPadTokenId;
    const labels = shiftLabels(batch.labels, shape, ignore);
    // padding-free: one packed row of the real tokens; each label finds its hidden state through hRows
    const hRows = this.args.paddingFree
      ? labelRows(batch.attentionMask, batch.B, batch.T, labels, ignore)
      : undefined;
    const h = this.model.hiddenStates({ data: batch.inputIds, shape }, {
      attentionMask: { data: batch.attentionMask, shape },
      packed: hRows !== undefined,
    });
    const C = h.shape[2];
    return crossEntropy(reshape(h, [h.size / C, C]), this.model.lmHeadWeight(), labels, {
      ignoreIndex: ignore,
      hRows,
    });
  }

  protected computeLoss(examples: SFTExample[], training: boolean): MicroBatchOutput {
    const batch = collateSft(examples, {
      padTokenId: this.padId,
      labelPadTokenId: this.args.labelPadTokenId,
    });
    if (training) this.state.numTokens += batch.attentionMask.reduce((x, y) => x + y, 0);
    const loss = this.batchLoss(batch);
    const packed = noGrad(() => concat([reshape(loss, [1]), tensor([batch.tokens])])).keep();
    return { loss, packed };
  }

  /** Training: the micro-batches' mean loss and the tokens so far; evaluation: the loss per scored token. */
  protected logMetrics(rows: number[][], phase: "train" | "eval"): Record<string, number> {
    if (phase === "train") {
      return { loss: meanRows(rows, METRIC_SLOTS.length)[0], num_tokens: this.state.numTokens };
    }
    let sum = 0, total = 0;
    for (const [loss, tokens] of rows) {
      sum += loss * tokens;
      total += tokens;
    }
    return { loss: sum / total };
  }

  protected argsJson(): Record<string, unknown> {
    return this.args.toSnakeCase();
  }

  /** A checkpoint keeps the tokens trained on so far, so that a resumed run's num_tokens goes on counting. */
  protected override checkpointExtras(): Promise<CheckpointExtras> {
    return Promise.resolve({ fields: { num_tokens: this.state.numTokens }, write: () => Promise.resolve() });
  }

  protected override restoreExtras(dir: string, webdpoState: Record<string, unknown>): Promise<void> {
    if (webdpoState.num_tokens === undefined) {
      this.print(`webdpo: warning: ${dir} does not record num_tokens; the resumed run counts tokens from 0`);
      return Promise.resolve();
    }
    this.state.numTokens = countField(webdpoState, "num_tokens", `${dir}/${CHECKPOINT_FILES.webdpo}`);
    return Promise.resolve();
  }

  protected override error(message: string): Error {
    return new SFTTrainingError(message);
  }

  /** SFTConfig's options are camelCase. */
  protected override optionName(snake: string): string {
    return snakeToCamel(snake);
  }
}
