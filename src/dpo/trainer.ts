/**
 * DPOTrainer: TRL's DPOTrainer semantics (SPEC.md) on WebGPU, as a loss over the training loop of src/train (as
 * TRL's DPOTrainer is over transformers' Trainer): the loop runs the steps, logs, evaluations, checkpoints and
 * resume; this file says what one micro-batch's loss is and what DPO adds around it.
 *
 * Per micro-batch: collate [chosen; rejected] → the reference log-probs (a frozen model, precomputed values, or
 * none), first and in a scope of their own → one policy forward to the final hidden states → fused LM-head
 * log-probs of the shifted labels (no [2B, T, V] logits) → per-sequence log-probs → dpoLoss. Its metric pack holds
 * the loss, dpoLoss's metrics (TRL's names), the pooled logits and the NLL.
 *
 * Around the loop: every row is tokenized once; the reference is made before the first step (a frozen GPU copy of
 * the policy unless one is given, LoRA's options 2 and 3, or precomputed log-probs), after the memory guard
 * (memory_check.ts); TR-DPO mixes the policy into the reference after the steps it names (sync_ref.ts);
 * generate_during_eval samples after each evaluation (generations.ts); checkpoints add bco_pair's running mean,
 * TR-DPO's reference weights and the reference's norm.
 *
 * LoRA (lora_reference.ts): `peftConfig`, or a model that already carries adapters, trains only the adapter (the
 * optimizer holds its tensors alone; the base gets no gradients). The reference is then an explicit `refModel`
 * (option 1), the policy with its adapters disabled (option 2) or with `ref_adapter_name` active (option 3).
 * Checkpoints and `save()` write the adapter as a PEFT folder instead of the model (checkpoint_parts.ts).
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { concat } from "../autograd/ops/concat.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { fusedLogProbsWithStats } from "../autograd/ops/fused_logprobs.ts";
import { shiftLabels } from "../autograd/ops/labels.ts";
import { scope } from "../autograd/scope.ts";
import {
  collate,
  DatasetError,
  type PairBatch,
  resolveLengths,
  type RowTokenizer,
  type TokenizedRow,
} from "../data/tokenize_row.ts";
import { tokenizeDataset } from "../data/tokenize_parallel.ts";
import type { Dataset, Row } from "../data/dataset.ts";
import { init } from "../gpu/init.ts";
import { type CausalLM, hostBatch, labelRows } from "../models/causal_lm.ts";
import { packPairs } from "../models/pack_pairs.ts";
import { cloneModel } from "../models/clone.ts";
import { type HalfDtype, halfDtypeOf, unpackHalf } from "../nn/half_weights.ts";
import { namedTrainableParametersOf } from "../nn/lora.ts";
import type { LoraConfig, LoraConfigInput } from "../nn/lora_config.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { JsonlLog } from "../train/metrics_log.ts";
import type { TensorSource } from "../train/weights.ts";
import { meanRows } from "../train/metric_window.ts";
import type { CheckpointExtras, MicroBatchOutput, TrainerOptions } from "../train/options.ts";
import { initialTrainerState, TrainingError } from "../train/state.ts";
import { Trainer } from "../train/trainer.ts";
import type { DPOConfig } from "./config.ts";
import { type PairLogps, pairLogps } from "./batch.ts";
import { generateSamples } from "./generations.ts";
import { BcoRunningMean, DPO_LOSS_METRICS, dpoLoss } from "./loss.ts";
import {
  referenceExtras,
  type ReferenceState,
  restorePolicy,
  restoreReference,
  writePolicy,
} from "./checkpoint_parts.ts";
import {
  inReference,
  type LoraSetup,
  LoraTrainingError,
  referenceTensors,
  seedLoraDropout,
  setupLora,
} from "./lora_reference.ts";
import { checkMemory } from "./memory_check.ts";
import { isSyncStep, mixInto } from "./sync_ref.ts";

export { type TrainerCallback, type TrainerState, TrainingError, type TrainOutput } from "../train/state.ts";

/** A tokenizer the trainer can use: tokenize_row's needs plus the pad id (the webdpo Tokenizer). */
export type TrainerTokenizer = RowTokenizer & {
  padTokenId: number | null;
  save?(dir: string): Promise<void>;
};

export interface DPOTrainerOptions extends TrainerOptions {
  model: CausalLM;
  /** The reference model; default: a frozen GPU copy of the initial policy (unless reference_free). */
  refModel?: CausalLM | null;
  args: DPOConfig;
  trainDataset: Dataset | Row[];
  evalDataset?: Dataset | Row[] | null;
  tokenizer: TrainerTokenizer | Tokenizer;
  /**
   * A LoRA configuration (PEFT's options in camelCase, snake_case or TRL's lora_* names; PEFT's defaults for what is
   * missing): LoRA is put on `model` (base frozen) and only the adapter is trained. Without it, a model that
   * already has adapters (applyLora / loadAdapter) trains its active adapter (or `model_adapter_name`).
   */
  peftConfig?: LoraConfig | LoraConfigInput | null;
}

interface Example {
  row: TokenizedRow;
  where: string;
  /** Precomputed reference log-probs (chosen, rejected). */
  ref?: [number, number];
}

/** The per-micro-batch values kept on the GPU until the next log. */
const METRIC_SLOTS = ["loss", ...DPO_LOSS_METRICS, "logits/chosen", "logits/rejected", "nll_loss"] as const;

export class DPOTrainer extends Trainer<Example> {
  declare readonly tokenizer: TrainerTokenizer;
  readonly args: DPOConfig;
  refModel: CausalLM | null;
  readonly bco: BcoRunningMean | null;
  /** The LoRA side of the run (the trained and reference adapters), or null for full fine-tuning. */
  readonly lora: LoraSetup | null;
  protected readonly metricSlots = METRIC_SLOTS;
  private ownsRef = false;
  /** The 16-bit format of the frozen copy (ref_model_init_kwargs' torch_dtype), or null for f32. */
  private readonly refDtype: HalfDtype | null;
  private padId = 0;
  private readonly generationsLog: JsonlLog;

  constructor(opts: DPOTrainerOptions) {
    const a = opts.args;
    if (!a || typeof a !== "object" || !("lossType" in a)) {
      throw new TrainingError("args must be a DPOConfig (new DPOConfig({ outputDir, ... }))");
    }
    super({ ...opts, trainingArgs: a, state: initialTrainerState(a.perDeviceTrainBatchSize) });
    this.args = a;
    this.generationsLog = new JsonlLog(`${a.outputDir}/generations.jsonl`, this.metricsLog.enabled);
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
    try {
      this.refDtype = halfDtypeOf(a.refModelInitKwargs, "ref_model_init_kwargs");
    } catch (e) {
      throw new TrainingError((e as Error).message);
    }
    if (a.syncRefModel && (this.refDtype || this.refModel?.halfDtype())) {
      throw new TrainingError(
        "sync_ref_model moves the reference toward the policy in float32; a reference stored in 16 bits " +
          "(ref_model_init_kwargs torch_dtype) cannot take those updates: use one or the other",
      );
    }
    this.bco = a.lossType === "bco_pair" || (Array.isArray(a.lossType) && a.lossType.includes("bco_pair"))
      ? new BcoRunningMean()
      : null;
  }

  // ------------------------------------------------------------------------------------------------------------
  // data and the reference

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

  protected async prepare(): Promise<void> {
    await init();
    this.trainExamples ??= await this.tokenizeAll(this.trainData);
    if (this.evalData && !this.evalExamples) this.evalExamples = await this.tokenizeAll(this.evalData);
    const pad = this.args.paddingValue ?? this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId;
    if (pad === null || pad === undefined) {
      throw new TrainingError("no padding id: set padding_value, or use a tokenizer with a pad or EOS token");
    }
    this.padId = pad;
    // a LoRA policy keeps its base frozen (only the adapter trains)
    this.setUpModelForTraining(!this.lora, this.args.gradientCheckpointing);
    let tokens = 0;
    for (const e of [...this.trainExamples, ...(this.evalExamples ?? [])]) {
      tokens = Math.max(tokens, e.row.chosen_input_ids.length, e.row.rejected_input_ids.length);
    }
    const a = this.args;
    checkMemory({
      model: this.model,
      args: a,
      tokens,
      hasRefModel: this.refModel !== null,
      lora: !!this.lora,
      refDtype: this.refDtype,
    });
    if (
      !a.referenceFree && !this.refModel && !this.lora && !(a.precomputeRefLogProbs && this.allPrecomputed())
    ) {
      this.refModel = cloneModel(this.model, { dtype: this.refDtype });
      this.ownsRef = true;
    }
    if (this.refModel) {
      for (const p of this.refModel.parameters()) p.requiresGrad = false;
      this.refModel.eval();
    }
    if (a.precomputeRefLogProbs && !this.allPrecomputed()) {
      await this.precomputeReference(this.trainExamples);
      if (this.evalExamples) await this.precomputeReference(this.evalExamples);
      // generate_during_eval samples from the reference, so it is kept then
      if (this.ownsRef && !(a.generateDuringEval && this.evalExamples)) {
        this.refModel!.dispose();
        this.refModel = null;
        this.ownsRef = false;
      }
    }
  }

  private allPrecomputed(): boolean {
    return !!this.trainExamples?.every((e) => e.ref) &&
      (!this.evalExamples || this.evalExamples.every((e) => e.ref));
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
  // the loss

  /** Per-sequence log-probs of a collated batch under `model` (recorded for backward when grad mode is on). */
  private logps(model: CausalLM, batch: PairBatch, shifted: Int32Array, policy: boolean): PairLogps {
    const a = this.args;
    const R = 2 * batch.B;
    const shape: [number, number] = [R, batch.T];
    // padding-free: the real tokens run as one packed sequence; the labels find their rows through hRows. With
    // prefix sharing each pair's common prefix (its prompt) runs once for both sequences (models/pack_pairs.ts).
    // A sliding window counts packed positions, which a shared prefix would shift: such models pack plainly.
    const ids = { data: batch.inputIds, shape }, attentionMask = { data: batch.attentionMask, shape };
    const sharePrefix = a.paddingFree && a.prefixSharing &&
      model.config.layerSlidingWindow.every((w) => w === null);
    const rows = sharePrefix
      ? packPairs(hostBatch(ids, model.config.vocabSize, { attentionMask })).rows
      : undefined;
    const hRows = a.paddingFree
      ? labelRows(batch.attentionMask, R, batch.T, shifted, a.labelPadTokenId, rows)
      : undefined;
    const h = model.hiddenStates(ids, {
      attentionMask,
      packed: hRows === undefined ? false : sharePrefix ? "pairs" : true,
    });
    const C = h.shape[2];
    const r = fusedLogProbsWithStats(reshape(h, [h.size / C, C]), model.lmHeadWeight(), shifted, {
      ignoreIndex: a.labelPadTokenId,
      hRows,
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

  /** Loss and metrics of one micro-batch: the loss (for backward) and the packed metrics [METRIC_SLOTS], kept. */
  protected computeLoss(examples: Example[], training: boolean): MicroBatchOutput {
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

  /** The means of the packs under TRL's names, without bco's internals, nll_loss without RPO, ipo's logps. */
  protected logMetrics(rows: number[][]): Record<string, number> {
    const means = meanRows(rows, METRIC_SLOTS.length);
    const out: Record<string, number> = {};
    const ipoOnly = this.args.lossType === "ipo";
    METRIC_SLOTS.forEach((name, j) => {
      if (name.startsWith("bco/")) return;
      if (name === "nll_loss" && this.args.rpoAlpha === null) return;
      if (ipoOnly && name.startsWith("logps/")) return;
      out[name] = means[j];
    });
    return out;
  }

  // ------------------------------------------------------------------------------------------------------------
  // around the steps

  protected override beforeMicroBatch(step: number, micro: number): void {
    if (this.lora) seedLoraDropout(this.lora, this.args.seed, step, micro);
  }

  /** TR-DPO: the reference moves toward the policy every ref_model_sync_steps. */
  protected override afterOptimizerStep(): void {
    const a = this.args;
    if (a.syncRefModel && this.refModel && isSyncStep(this.state.globalStep, a.refModelSyncSteps)) {
      mixInto(this.refModel.parameters(), this.model.parameters(), a.refModelMixupAlpha);
    }
  }

  protected override async afterEvaluate(): Promise<void> {
    if (!this.args.generateDuringEval) return;
    await generateSamples({
      model: this.model,
      refModel: this.refModel,
      lora: this.lora,
      hasReference: !this.args.referenceFree,
      tokenizer: this.tokenizer as unknown as Tokenizer,
      prompts: this.evalExamples!.map((e) => e.row.prompt_input_ids),
      step: this.state.globalStep,
      epoch: this.state.epoch,
      print: (l) => this.print(l),
      log: this.generationsLog,
    });
  }

  protected override async startLogs(keepUpToStep: number | null): Promise<void> {
    await super.startLogs(keepUpToStep);
    await this.generationsLog.start(keepUpToStep);
  }

  // ------------------------------------------------------------------------------------------------------------
  // checkpoints

  protected argsJson(): Record<string, unknown> {
    return this.args.toSnakeCase();
  }

  protected override resumeWarnKeys(): readonly string[] {
    return [...super.resumeWarnKeys(), "loss_type", "beta"];
  }

  protected override writePolicy(dir: string, tokenizer: Tokenizer | undefined): Promise<void> {
    return writePolicy(this.model, this.lora, dir, tokenizer);
  }

  protected override restorePolicy(dir: string): Promise<void> {
    return restorePolicy(this.model, this.lora, dir, (l) => this.print(l));
  }

  protected override policyWeights(): [string, Tensor][] {
    return this.lora ? namedTrainableParametersOf(this.model) : this.model.namedParameters();
  }

  protected override checkpointExtras(): Promise<CheckpointExtras> {
    return referenceExtras(this.referenceState());
  }

  protected override restoreExtras(dir: string, ws: Record<string, unknown>, step: number): Promise<void> {
    return restoreReference(this.referenceState(), dir, ws, step);
  }

  private referenceState(): ReferenceState {
    return {
      bco: this.bco,
      refModel: this.refModel,
      refChanged: this.refChanged(),
      referenceParts: this.referenceParts(),
      print: (l) => this.print(l),
    };
  }

  /** Whether the reference weights differ from the initial model's (TR-DPO synced them at least once). */
  private refChanged(): boolean {
    const a = this.args;
    return a.syncRefModel && this.refModel !== null && this.state.globalStep >= a.refModelSyncSteps &&
      a.refModelSyncSteps > 0;
  }

  /** The tensors whose norm a checkpoint records to notice a different reference on resume, or null. */
  private referenceParts(): TensorSource[] | null {
    if (this.refModel) {
      // a weight stored in 16 bits counts with its f32 values, unpacked one at a time
      const packed = this.refModel.packedParameters().map(([, p]) => () => unpackHalf(p));
      return [...this.refModel.parameters(), ...packed];
    }
    if (this.lora && !this.args.referenceFree) return referenceTensors(this.model, this.lora);
    return null;
  }

  /**
   * Saves the policy to `dir` (default `output_dir`) with the tokenizer files: config.json + model.safetensors, or
   * for a LoRA run the trained adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors, loadable
   * by `peft`). For a full model from a LoRA run, merge first: `mergeAdapter(model)` then `saveModel` (with an int8
   * base, `dequantizeBase(model)` before merging).
   */
  override save(dir: string = this.args.outputDir): Promise<void> {
    return super.save(dir);
  }

  /** Releases the reference copy and the optimizer state the trainer made (the policy belongs to the caller). */
  override dispose(): void {
    super.dispose();
    if (this.ownsRef) this.refModel?.dispose();
    this.refModel = null;
    this.bco?.dispose();
  }
}
