/**
 * `Trainer`: the one training loop, as Hugging Face's `transformers.Trainer`. DPO and SFT (and any later trainer)
 * subclass it and supply the loss of a micro-batch; the loop does everything around it.
 *
 * One optimizer step = up to `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size`
 * examples in the epoch's seeded order (plan.ts): per micro-batch the trainer's `computeLoss` (recorded for
 * backward), then backward of loss / micro-batches with the graph released as it goes. Then clipping and the
 * fused AdamW step, `trimPool()`, the LR schedule. Each micro-batch's metrics stay on the GPU in the logging
 * window (metric_window.ts); the latest step's loss and gradient norm are read back one step late for the NaN
 * check and the progress bar.
 *
 * Around the steps: logs every `logging_steps` (console or above the progress bar, `output_dir/metrics.jsonl`,
 * `log_history`), evaluation (`eval_strategy`), checkpoints every `save_steps` / epoch and at the end
 * (checkpoint_state.ts: atomic, everything an exact resume needs), `resume_from_checkpoint`, callbacks, and a
 * graceful stop on Ctrl-C, `requestStop()` or the stop signal: the current step finishes, a checkpoint is saved,
 * and `train()` returns `interrupted: true`.
 *
 * What a subclass provides: `prepare` (tokenize, set the model up), `metricSlots` and `computeLoss` (the loss and
 * its metric pack, loss in slot 0), `logMetrics` (a window's rows → TRL's metric names). Optional hooks: before
 * a micro-batch, after an optimizer step, after an evaluation, its own checkpoint files, how the policy is saved.
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { scope } from "../autograd/scope.ts";
import type { Dataset } from "../data/dataset.ts";
import { gpuOrNull } from "../gpu/device.ts";
import { DeviceLostError, WebDPOError } from "../gpu/errors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { saveModel } from "../models/loader.ts";
import type { AdamW } from "../optim/adamw.ts";
import type { LRScheduler } from "../optim/schedule.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type TrainingArgs, writesJsonl } from "./args.ts";
import {
  CHECKPOINT_FILES,
  checkpointDirName,
  commitCheckpoint,
  loadOptimizer,
  loadTensorsInto,
  pruneCheckpoints,
  removeTemporaryCheckpoints,
} from "./checkpoint.ts";
import { writeManifest } from "./checkpoint_manifest.ts";
import { type LoopState, readLoopFiles, writeLoopFiles } from "./checkpoint_state.ts";
import { deviceLossReason, deviceLost, saveFailure } from "./failures.ts";
import { sink } from "../io/platform.ts";
import { interruptedMessage, listenForInterrupts } from "./interrupt.ts";
import { MetricWindow, PendingStep, readPacks, type StepValues } from "./metric_window.ts";
import { round, runSummary, trainLogEntry } from "./log_entries.ts";
import { JsonlLog } from "./metrics_log.ts";
import { buildOptimizer, buildScheduler } from "./optimizer.ts";
import { epochOrder, planSteps, positionAt, shuffleSeed, StepSampler } from "./plan.ts";
import { formatLogLine, Progress, type ProgressStream } from "./progress.ts";
import { asDataset, type CheckpointExtras, type MicroBatchOutput, type TrainerSetup } from "./options.ts";
import { resumeCheckpoint } from "./resume.ts";
import { optimizerStep } from "./step.ts";
import { type TrainerCallback, type TrainerState, TrainingError, type TrainOutput } from "./state.ts";
import { firstNonFinite } from "./weights.ts";

export abstract class Trainer<E, S extends TrainerState = TrainerState> {
  readonly model: CausalLM;
  readonly tokenizer: object;
  readonly callbacks: TrainerCallback<S>[];
  optimizer: AdamW | null;
  scheduler: LRScheduler | null;
  readonly state: S;
  /** The options the loop runs by. */
  protected readonly trainingArgs: TrainingArgs;
  protected readonly trainData: Dataset;
  protected readonly evalData: Dataset | null;
  /** The examples `prepare` made from the datasets. */
  protected trainExamples: E[] | null = null;
  protected evalExamples: E[] | null = null;
  protected readonly metricsLog: JsonlLog;
  private readonly computeMetrics?: (m: Record<string, number>) => Record<string, number>;
  private readonly out: (line: string) => void;
  private readonly progressStream: ProgressStream | undefined;
  private readonly stopSignal: AbortSignal | undefined;
  private readonly handleSignals: boolean;
  private progress: Progress | null = null;
  private stopRequested = false;
  /** The step of the evaluation that set `state.bestMetric`. */
  private bestStep: number | null = null;
  /** The last checkpoint written or resumed from (named by the NaN error). */
  private lastCheckpoint: string | null = null;
  /** Whether `train` built the optimizer (then `dispose` releases its state; a caller's stays the caller's). */
  private ownsOptimizer = false;

  constructor(o: TrainerSetup<S>) {
    this.model = o.model;
    this.tokenizer = o.tokenizer;
    this.trainingArgs = o.trainingArgs;
    this.callbacks = o.callbacks ?? [];
    this.optimizer = o.optimizers?.[0] ?? null;
    this.scheduler = o.optimizers?.[1] ?? null;
    this.trainData = asDataset(o.trainDataset);
    this.evalData = o.evalDataset ? asDataset(o.evalDataset) : null;
    this.computeMetrics = o.computeMetrics;
    this.out = o.log ?? ((l) => sink().log(l));
    this.progressStream = o.progressStream;
    this.stopSignal = o.stopSignal;
    this.handleSignals = o.handleSignals ?? true;
    this.metricsLog = new JsonlLog(`${o.trainingArgs.outputDir}/metrics.jsonl`, writesJsonl(o.trainingArgs));
    this.state = o.state;
  }

  // ------------------------------------------------------------------------------------------------------------
  // what a trainer provides

  /** Names of the values of a micro-batch's metric pack; slot 0 is the loss. */
  protected abstract readonly metricSlots: readonly string[];

  /** Tokenizes the datasets into `trainExamples` / `evalExamples` (once) and sets the model up. */
  protected abstract prepare(forTraining: boolean): Promise<void>;

  /** The loss of a micro-batch (recorded for backward when grad mode is on) and its metric pack. */
  protected abstract computeLoss(examples: E[], training: boolean): MicroBatchOutput;

  /** A window's (or an evaluation's) packs, read back, as TRL's metric names (eval_ is added by the loop). */
  protected abstract logMetrics(rows: number[][], phase: "train" | "eval"): Record<string, number>;

  /** Before micro-batch `micro` of the step after `step` (LoRA dropout seeding). */
  protected beforeMicroBatch(_step: number, _micro: number): void {}

  /** After each optimizer step, `state.globalStep` already counting it (TR-DPO's reference sync). */
  protected afterOptimizerStep(): void {}

  /** After each evaluation is logged, before onEvaluate (DPO's generate_during_eval). */
  protected async afterEvaluate(): Promise<void> {}

  /** Starts the run's log files: anew, or kept up to the resumed step. */
  protected async startLogs(keepUpToStep: number | null): Promise<void> {
    await this.metricsLog.start(keepUpToStep);
  }

  /** The run's config under snake_case names, for training_args.json. */
  protected abstract argsJson(): Record<string, unknown>;

  /** training_args.json keys whose change on resume is worth a warning. */
  protected resumeWarnKeys(): readonly string[] {
    return ["per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate"];
  }

  /** Writes the trained weights and the tokenizer files (a Hugging Face model folder). */
  protected async writePolicy(dir: string, tokenizer: Tokenizer | undefined): Promise<void> {
    await saveModel(this.model, dir, { tokenizer });
  }

  /** Loads a checkpoint's trained weights in place (the optimizer keeps holding the same tensors). */
  protected async restorePolicy(dir: string): Promise<void> {
    await loadTensorsInto(
      `${dir}/${CHECKPOINT_FILES.model}`,
      this.model.namedParameters(),
      "the policy model",
    );
  }

  /** The weights a checkpoint saves, which must be finite. */
  protected policyWeights(): [string, Tensor][] {
    return this.model.namedParameters();
  }

  /** The trainer's own checkpoint files and webdpo_state.json fields. */
  protected checkpointExtras(): Promise<CheckpointExtras> {
    return Promise.resolve({ fields: {}, write: () => Promise.resolve() });
  }

  /** Restores the trainer's own checkpoint state (after the weights and the optimizer). */
  protected async restoreExtras(
    _dir: string,
    _webdpoState: Record<string, unknown>,
    _step: number,
  ): Promise<void> {}

  /** The error the loop throws (a subclass may use its own class). */
  protected error(message: string): Error {
    return new TrainingError(message);
  }

  /** How messages name an option given by its snake_case name (the config's own spelling). */
  protected optionName(snake: string): string {
    return snake;
  }

  // ------------------------------------------------------------------------------------------------------------
  // shared by the trainers

  /** Frozen base (a LoRA policy: only the adapter trains) or every parameter trained; gradient checkpointing. */
  protected setUpModelForTraining(trainEveryParameter: boolean, gradientCheckpointing: boolean): void {
    if (trainEveryParameter) { for (const p of this.model.parameters()) p.requiresGrad = true; }
    this.model.gradientCheckpointing = gradientCheckpointing;
    this.model.train();
  }

  /** The order of the training examples in `epoch` (a seeded shuffle; the same for a resumed run). */
  epochOrder(epoch: number): number[] {
    return epochOrder(shuffleSeed(this.trainingArgs), epoch, this.trainExamples!.length);
  }

  /** Asks a running `train()` to stop after its current step: it saves a checkpoint and returns `interrupted`. */
  requestStop(): void {
    this.stopRequested = true;
  }

  private get stopping(): boolean {
    return this.stopRequested || (this.stopSignal?.aborted ?? false);
  }

  protected async emit<K extends keyof TrainerCallback<S>>(
    hook: K,
    ...args: Parameters<NonNullable<TrainerCallback<S>[K]>> extends [S, ...infer R] ? R : never
  ): Promise<void> {
    for (const cb of this.callbacks) {
      const f = cb[hook] as ((s: S, ...r: unknown[]) => void | Promise<void>) | undefined;
      if (f) await f.call(cb, this.state, ...args);
    }
  }

  /** Prints a line: above the progress bar when one is drawn, else to the log sink (the console by default). */
  protected print(line: string): void {
    if (!this.progress?.log(line)) this.out(line);
  }

  /** The tokenizer, when it can write its files next to the weights. */
  protected savableTokenizer(): Tokenizer | undefined {
    const t = this.tokenizer as { save?: unknown };
    return typeof t.save === "function" ? t as Tokenizer : undefined;
  }

  /**
   * The error a failed run throws: `e`, or a DeviceLostError naming the checkpoint to resume from when the device
   * turns out lost. An error that began outside webdpo (a failed readback) may be how the loss was first noticed.
   */
  private async failure(e: unknown, device: GPUDevice | null): Promise<unknown> {
    let root = e;
    while (root instanceof WebDPOError && !(root instanceof DeviceLostError) && root.cause !== undefined) {
      root = root.cause;
    }
    if (!device || (root instanceof WebDPOError && !(root instanceof DeviceLostError))) return e;
    const reason = await deviceLossReason(device, 1000);
    return reason === null ? e : deviceLost(e, reason, this.state.globalStep, this.lastCheckpoint);
  }

  private lastGoodCheckpointNote(): string {
    return this.lastCheckpoint ? `; the last good checkpoint is ${this.lastCheckpoint}` : "";
  }

  private check(step: number, values: Record<string, number>): void {
    const hint = `lower ${this.optionName("learning_rate")}, check the data, or set ${
      this.optionName("max_grad_norm")
    }`;
    for (const [k, v] of Object.entries(values)) {
      if (!Number.isFinite(v)) {
        throw this.error(
          `step ${step}: ${k} is ${v}; training stopped (${hint})${this.lastGoodCheckpointNote()}`,
        );
      }
    }
  }

  private checkStep(v: StepValues | null): void {
    if (v) this.check(v.step, { loss: v.loss, grad_norm: v.gradNorm });
  }

  /** A window's or an evaluation's packs, read back, as the trainer's metrics (eval_ names for an evaluation). */
  private metricsOf(rows: number[][], phase: "train" | "eval"): Record<string, number> {
    if (rows.length === 0) return {};
    const m = this.logMetrics(rows, phase);
    return phase === "eval" ? Object.fromEntries(Object.entries(m).map(([k, v]) => [`eval_${k}`, v])) : m;
  }

  // ------------------------------------------------------------------------------------------------------------
  // the loop

  /** Runs training to `max_steps` (or `num_train_epochs`), resuming first when `resume_from_checkpoint` is set. */
  async train(): Promise<TrainOutput> {
    const started = performance.now();
    const a = this.trainingArgs;
    // the checkpoint is found and checked first: a damaged one is refused before the datasets are tokenized
    await removeTemporaryCheckpoints(a.outputDir);
    const resume = await resumeCheckpoint(
      a.resumeFromCheckpoint,
      a.outputDir,
      (l) => this.print(l),
      (m) => this.error(m),
    );
    await this.prepare(true);
    const device = gpuOrNull()?.device ?? null;
    const s = this.state;
    Object.assign(s, planSteps(this.trainExamples!.length, a));
    if (!this.optimizer) {
      // a LoRA policy: the trained adapter's tensors (and modules_to_save copies) only
      this.optimizer = buildOptimizer(this.model, a);
      if (!this.optimizer) throw this.error("the model has no trainable parameters");
      this.ownsOptimizer = true;
    }
    this.scheduler ??= buildScheduler(this.optimizer, a, s.maxSteps);
    const opt = this.optimizer;
    const sched = this.scheduler;
    const bs = a.perDeviceTrainBatchSize;
    const gas = a.gradientAccumulationSteps;
    this.stopRequested = false;
    let window = new MetricWindow(this.metricSlots.length);
    let lastNorm: Tensor | null = null;
    const pending = new PendingStep();
    let lossSum = 0;
    let lossCount = 0;
    let interrupted = false;
    let savedNow: string | null = null;
    const stopListening = this.handleSignals
      ? listenForInterrupts(() => (this.stopRequested = true), (l) => this.print(l))
      : () => {};
    try {
      let pos = positionAt(s.globalStep, s, a);
      if (resume) {
        const r = await this.restore(resume);
        pos = r.position;
        window = MetricWindow.fromRows(r.windowRows, this.metricSlots.length);
        lossSum = r.lossSum;
        lossCount = r.lossCount;
        this.lastCheckpoint = resume;
      }
      await this.startLogs(resume ? s.globalStep : null);
      const firstStep = s.globalStep;
      this.progress = new Progress(s.maxSteps, !a.disableTqdm, this.progressStream, firstStep);
      await this.emit("onTrainBegin");
      const sampler = new StepSampler(pos, this.trainExamples!.length, shuffleSeed(a), bs, gas);
      while (s.globalStep < s.maxSteps) {
        // one optimizer step: up to `gas` micro-batches of this epoch
        const { norm, lr } = optimizerStep({
          micro: sampler.next().map((batch) => batch.map((i) => this.trainExamples![i])),
          before: (m) => this.beforeMicroBatch(s.globalStep, m),
          computeLoss: (examples) => this.computeLoss(examples, true),
          window,
          optimizer: opt,
          scheduler: sched,
          maxGradNorm: a.maxGradNorm,
        });
        s.globalStep++;
        s.epoch = s.globalStep / s.stepsPerEpoch;
        this.afterOptimizerStep();
        lastNorm?.dispose();
        lastNorm = norm;
        // the previous step's loss and norm are checked now (their readback overlapped this step)
        const previous = await pending.take();
        if (previous) {
          this.checkStep(previous);
          this.progress.update(previous.step, { loss: previous.loss });
        }
        pending.start(s.globalStep, window.last, norm);
        await this.emit("onStepEnd");
        if (
          s.globalStep % s.loggingSteps === 0 || (a.loggingFirstStep && s.globalStep === 1) ||
          s.globalStep === s.maxSteps
        ) {
          const metrics = this.metricsOf(await window.read(), "train");
          const gradNorm = await lastNorm.item();
          const entry = trainLogEntry(metrics, gradNorm, lr, s.epoch, s.globalStep);
          this.check(s.globalStep, { loss: entry.loss, grad_norm: gradNorm });
          lossSum += entry.loss * window.length;
          lossCount += window.length;
          window.clear();
          s.logHistory.push(entry);
          this.print(formatLogLine(entry));
          await this.metricsLog.append(entry);
          this.progress.update(s.globalStep, entry);
          await this.emit("onLog", entry);
        }
        const evalNow = this.evalExamples &&
          (a.evalStrategy === "steps" && s.globalStep % s.evalSteps === 0 ||
            a.evalStrategy === "epoch" && s.globalStep % s.stepsPerEpoch === 0);
        if (evalNow) await this.evaluate();
        const stop = this.stopping && s.globalStep < s.maxSteps;
        const saveNow = stop ||
          a.saveStrategy === "steps" && (s.globalStep % s.saveSteps === 0 || s.globalStep === s.maxSteps) ||
          a.saveStrategy === "epoch" && (s.globalStep % s.stepsPerEpoch === 0 || s.globalStep === s.maxSteps);
        if (saveNow) {
          // this step's loss and gradient norm must be finite before anything is saved
          this.checkStep(await pending.take());
          savedNow = await this.saveCheckpoint({
            position: sampler.position,
            windowRows: await window.read(),
            lossSum,
            lossCount,
            bestStep: this.bestStep,
          });
        }
        if (stop) {
          interrupted = true;
          break;
        }
      }
      this.checkStep(await pending.take());
      const trainingLoss = lossCount ? lossSum / lossCount : NaN;
      const runtime = (performance.now() - started) / 1000;
      const steps = s.globalStep - firstStep;
      const metrics = runSummary(runtime, steps, bs * gas, trainingLoss, s.epoch);
      if (interrupted) {
        this.print(interruptedMessage(s.globalStep, s.maxSteps, savedNow!, a.outputDir));
      } else {
        this.print(formatLogLine(metrics));
        await this.metricsLog.append({ ...metrics, step: s.globalStep });
      }
      await this.emit("onTrainEnd");
      return { globalStep: s.globalStep, trainingLoss, metrics, interrupted, checkpoint: savedNow };
    } catch (e) {
      throw await this.failure(e, device);
    } finally {
      window.clear();
      lastNorm?.dispose();
      stopListening();
      this.progress?.close();
      this.progress = null;
    }
  }

  /** Evaluates on the eval dataset: the trainer's metrics with the eval_ prefix (logged and returned). */
  async evaluate(): Promise<Record<string, number>> {
    await this.prepare(false);
    if (!this.evalExamples) throw this.error("evaluate(): no evalDataset was given");
    const bs = this.trainingArgs.perDeviceEvalBatchSize;
    const packs: Tensor[] = [];
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      for (let i = 0; i < this.evalExamples.length; i += bs) {
        const examples = this.evalExamples.slice(i, i + bs);
        packs.push(scope(() => noGrad(() => this.computeLoss(examples, false).packed)));
      }
      const metrics = this.metricsOf(await readPacks(packs, this.metricSlots.length), "eval");
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
      await this.afterEvaluate();
      await this.emit("onEvaluate", metrics);
      return metrics;
    } finally {
      for (const p of packs) p.dispose();
      this.model.train(wasTraining);
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // checkpoints

  /** Writes `output_dir/checkpoint-<step>` atomically, prunes old ones, calls onSave. */
  private async saveCheckpoint(loop: LoopState): Promise<string> {
    const a = this.trainingArgs;
    const s = this.state;
    const bad = await firstNonFinite(this.policyWeights());
    if (bad) {
      throw this.error(
        `step ${s.globalStep}: the weights hold non-finite values (${bad.name}: norm ${bad.norm}); no checkpoint ` +
          `was saved (lower ${this.optionName("learning_rate")} or set ${this.optionName("max_grad_norm")})` +
          this.lastGoodCheckpointNote(),
      );
    }
    if (this.bestStep === s.globalStep) {
      s.bestModelCheckpoint = `${a.outputDir}/${checkpointDirName(s.globalStep)}`;
    }
    const extras = await this.checkpointExtras();
    const tokenizer = this.savableTokenizer();
    const write = async (tmp: string) => {
      await this.writePolicy(tmp, tokenizer);
      await writeLoopFiles(tmp, {
        args: a,
        argsJson: this.argsJson(),
        state: s,
        loop,
        metricSlots: this.metricSlots,
        trainExamples: this.trainExamples!.length,
        optimizer: this.optimizer!,
        scheduler: this.scheduler!,
        extraFields: extras.fields,
      });
      await extras.write(tmp);
      await writeManifest(tmp);
    };
    let dir: string;
    try {
      dir = await commitCheckpoint(a.outputDir, s.globalStep, write);
    } catch (e) {
      throw saveFailure(e, `${a.outputDir}/${checkpointDirName(s.globalStep)}`, this.lastCheckpoint);
    }
    this.lastCheckpoint = dir;
    if (a.saveTotalLimit !== null) {
      await pruneCheckpoints(a.outputDir, a.saveTotalLimit, [dir, s.bestModelCheckpoint]);
    }
    await this.emit("onSave", dir);
    return dir;
  }

  /** Restores everything a checkpoint holds; returns the loop's own state (data position, log window). */
  private async restore(dir: string): Promise<LoopState> {
    const s = this.state;
    const saved = await readLoopFiles(dir, {
      args: this.trainingArgs,
      argsJson: this.argsJson(),
      warnKeys: this.resumeWarnKeys(),
      metricSlots: this.metricSlots.length,
      trainExamples: this.trainExamples!.length,
      print: (l) => this.print(l),
      fail: (m) => this.error(m),
    });
    // weights and optimizer state, in place (the optimizer holds the policy's tensors)
    await this.restorePolicy(dir);
    await loadOptimizer(`${dir}/${CHECKPOINT_FILES.optimizer}`, this.optimizer!);
    this.scheduler!.loadState({ stepCount: saved.schedulerSteps });
    await this.restoreExtras(dir, saved.webdpoState, saved.trainerState.globalStep);
    s.globalStep = saved.trainerState.globalStep;
    s.epoch = s.globalStep / s.stepsPerEpoch;
    s.logHistory.splice(0, s.logHistory.length, ...saved.trainerState.logHistory);
    s.bestMetric = saved.trainerState.bestMetric;
    s.bestModelCheckpoint = saved.trainerState.bestModelCheckpoint;
    this.bestStep = saved.loop.bestStep;
    this.print(`webdpo: resuming from ${dir} at step ${s.globalStep}`);
    return saved.loop;
  }

  /**
   * Saves the trained weights to `dir` (default `output_dir`) with the tokenizer files: a Hugging Face model folder
   * (a trainer may write another form, as DPO's LoRA runs write a PEFT adapter folder).
   */
  /**
   * Releases what the trainer allocated: the optimizer state it built (AdamW's two moments, twice the trained
   * parameters' bytes). The model, and an optimizer passed in `optimizers`, belong to the caller.
   */
  dispose(): void {
    if (this.ownsOptimizer) this.optimizer?.dispose();
    this.optimizer = null;
    this.scheduler = null;
    this.ownsOptimizer = false;
  }

  async save(dir: string = this.trainingArgs.outputDir): Promise<void> {
    await this.writePolicy(dir, this.savableTokenizer());
  }
}
