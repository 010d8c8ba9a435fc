/**
 * The loop's part of a checkpoint (checkpoint.ts has the file formats): the optimizer, the schedule's step count,
 * the data position (rng_state.json), the logging window and running training-loss sum (webdpo_state.json), and
 * Hugging Face's trainer_state.json. The trainer adds the weights and its own files.
 *
 * Reading checks the checkpoint against this run before anything is loaded: the same number of training
 * examples (else the data position means nothing), windows of the trainer's metric slots; a different seed or
 * batch, accumulation, learning rate (and the trainer's own keys) only warn.
 */
import type { AdamW } from "../optim/adamw.ts";
import type { LRScheduler } from "../optim/schedule.ts";
import type { TrainingArgs } from "./args.ts";
import {
  CHECKPOINT_FILES as F,
  countField,
  hfTrainerState,
  numberField,
  parseHfTrainerState,
  readJson,
  writeJson,
  writeOptimizer,
} from "./checkpoint.ts";
import { type DataPosition, shuffleSeed } from "./plan.ts";
import type { TrainerState } from "./state.ts";

/** The loop's state that is not in TrainerState. */
export interface LoopState {
  position: DataPosition;
  /** The metric packs of the logging window in progress, as rows of the trainer's slots. */
  windowRows: number[][];
  /** The training loss summed over the micro-batches of every log so far, and their count. */
  lossSum: number;
  lossCount: number;
  /** The step of the evaluation that set best_metric. */
  bestStep: number | null;
}

/** What `writeLoopFiles` needs. */
export interface LoopFilesInput {
  args: TrainingArgs;
  /** The run's config under snake_case names (training_args.json). */
  argsJson: Record<string, unknown>;
  state: TrainerState;
  loop: LoopState;
  metricSlots: readonly string[];
  trainExamples: number;
  optimizer: AdamW;
  scheduler: LRScheduler;
  /** The trainer's own fields of webdpo_state.json, after the loop's. */
  extraFields: Record<string, unknown>;
}

/** Writes the loop's files into a checkpoint folder being made. */
export async function writeLoopFiles(dir: string, x: LoopFilesInput): Promise<void> {
  const { args: a, state: s, loop } = x;
  await writeOptimizer(`${dir}/${F.optimizer}`, x.optimizer);
  await writeJson(`${dir}/${F.scheduler}`, {
    step_count: x.scheduler.stepCount,
    last_epoch: x.scheduler.stepCount,
    lr_scheduler_type: a.lrSchedulerType,
    base_lrs: x.optimizer.groups.map((g) => g.initialLr),
    last_lr: x.scheduler.lastLr(),
  });
  await writeJson(`${dir}/${F.rng}`, {
    seed: a.seed,
    data_seed: a.dataSeed,
    shuffle_seed: shuffleSeed(a),
    epoch: loop.position.epoch,
    examples_seen_in_epoch: loop.position.cursor,
    num_train_examples: x.trainExamples,
    order: "epoch e visits the examples in the order Generator(shuffle_seed + 7919 * e).shuffle([0, n))",
  });
  await writeJson(`${dir}/${F.args}`, x.argsJson);
  await writeJson(`${dir}/${F.webdpo}`, {
    format: 1,
    global_step: s.globalStep,
    metric_slots: x.metricSlots,
    log_window: loop.windowRows,
    train_loss_sum: loop.lossSum,
    train_loss_count: loop.lossCount,
    best_step: loop.bestStep,
    ...x.extraFields,
  });
  await writeJson(`${dir}/${F.trainerState}`, hfTrainerState(s));
}

/** What `readLoopFiles` checks the checkpoint against. */
export interface LoopFilesExpect {
  args: TrainingArgs;
  argsJson: Record<string, unknown>;
  /** training_args.json keys whose change is worth a warning. */
  warnKeys: readonly string[];
  metricSlots: number;
  trainExamples: number;
  print: (line: string) => void;
  fail: (message: string) => Error;
}

/** A checkpoint's loop files, read and checked (nothing is loaded into the run yet). */
export interface LoopFiles {
  trainerState: ReturnType<typeof parseHfTrainerState>;
  loop: LoopState;
  schedulerSteps: number;
  /** webdpo_state.json as read (the trainer's own fields included). */
  webdpoState: Record<string, unknown>;
}

export async function readLoopFiles(dir: string, x: LoopFilesExpect): Promise<LoopFiles> {
  const path = (f: string) => `${dir}/${f}`;
  const trainerState = parseHfTrainerState(await readJson(path(F.trainerState)), path(F.trainerState));
  const rng = await readJson(path(F.rng));
  const ws = await readJson(path(F.webdpo));
  const sch = await readJson(path(F.scheduler));
  const n = countField(rng, "num_train_examples", path(F.rng));
  if (n !== x.trainExamples) {
    throw x.fail(
      `${path(F.rng)}: the checkpoint was trained on ${n} examples, this training set has ` +
        `${x.trainExamples}; resuming needs the same training set`,
    );
  }
  const savedSeed = numberField(rng, "shuffle_seed", path(F.rng), true);
  const seed = shuffleSeed(x.args);
  if (savedSeed !== seed) {
    x.print(
      `webdpo: warning: the checkpoint's data order came from seed ${savedSeed}, this run's from ` +
        `${seed}: the remaining batches will differ from the interrupted run's`,
    );
  }
  const position = {
    epoch: countField(rng, "epoch", path(F.rng)),
    cursor: countField(rng, "examples_seen_in_epoch", path(F.rng)),
  };
  if (position.cursor > n) {
    throw x.fail(
      `${path(F.rng)}: "examples_seen_in_epoch" is ${position.cursor}, more than the ${n} examples`,
    );
  }
  const saved = await readJson(path(F.args));
  const differ = x.warnKeys.filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(x.argsJson[k]));
  if (differ.length) {
    x.print(`webdpo: warning: resuming with a different ${differ.join(", ")} than the checkpoint's run`);
  }
  const window = ws.log_window;
  if (
    !Array.isArray(window) ||
    !window.every((r) => Array.isArray(r) && r.length === x.metricSlots && r.every(Number.isFinite))
  ) {
    throw x.fail(`${path(F.webdpo)}: "log_window" must be a list of ${x.metricSlots}-number rows`);
  }
  return {
    trainerState,
    loop: {
      position,
      windowRows: window as number[][],
      lossSum: numberField(ws, "train_loss_sum", path(F.webdpo)),
      lossCount: countField(ws, "train_loss_count", path(F.webdpo)),
      bestStep: typeof ws.best_step === "number" ? ws.best_step : null,
    },
    schedulerSteps: countField(sch, "step_count", path(F.scheduler)),
    webdpoState: ws,
  };
}
