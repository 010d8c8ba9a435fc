/**
 * The run's shape and the data order, as pure functions of the options, the dataset size and the seed.
 *
 * An optimizer step takes `gradient_accumulation_steps` micro-batches of `per_device_train_batch_size` examples; an
 * epoch's last step may take fewer, so that every example is used exactly once per epoch (steps per epoch round
 * up). Epoch e visits the examples in the order `Generator(seed + 7919·e).shuffle([0, n))`, so the position after
 * any number of steps (`positionAt`) is known without replaying the run: a resumed run sees exactly the batches
 * the uninterrupted run would have seen.
 */
import { Generator } from "../tensor/random.ts";
import type { TrainingArgs } from "./args.ts";

/**
 * An interval given as steps or as a fraction of the run (`logging_steps`, `eval_steps`, `save_steps`) in optimizer
 * steps: values ≥ 1 as they are, a fraction r < 1 as ⌈r · maxSteps⌉ (transformers' rule).
 */
export function intervalSteps(value: number, maxSteps: number): number {
  if (!(value > 0) || !Number.isInteger(maxSteps) || maxSteps < 1) {
    throw new RangeError(`intervalSteps: expected value > 0 and maxSteps ≥ 1, got ${value} and ${maxSteps}`);
  }
  return value >= 1 ? value : Math.max(1, Math.ceil(value * maxSteps));
}

/** The run's length and intervals, in optimizer steps. */
export interface StepPlan {
  stepsPerEpoch: number;
  maxSteps: number;
  /** Epochs begun by the end of the run (Hugging Face's num_train_epochs of a max_steps run). */
  numTrainEpochs: number;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
}

/** The plan of a run over `examples` training examples. */
export function planSteps(examples: number, a: TrainingArgs): StepPlan {
  const batchesPerEpoch = Math.ceil(examples / a.perDeviceTrainBatchSize);
  const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / a.gradientAccumulationSteps));
  const maxSteps = a.maxSteps > 0 ? a.maxSteps : Math.ceil(a.numTrainEpochs * stepsPerEpoch);
  return {
    stepsPerEpoch,
    maxSteps,
    numTrainEpochs: Math.ceil(maxSteps / stepsPerEpoch),
    loggingSteps: intervalSteps(a.loggingSteps, maxSteps),
    evalSteps: intervalSteps(a.evalSteps ?? a.loggingSteps, maxSteps),
    saveSteps: intervalSteps(a.saveSteps, maxSteps),
  };
}

/** The seed of the data order: `data_seed`, else `seed`. */
export function shuffleSeed(a: TrainingArgs): number {
  return a.dataSeed ?? a.seed;
}

/** The order of `n` training examples in `epoch` (a seeded shuffle; the same for a resumed run). */
export function epochOrder(seed: number, epoch: number, n: number): number[] {
  return new Generator(seed + 7919 * epoch).shuffle(Array.from({ length: n }, (_, i) => i));
}

/** Where the next training batch comes from: the epoch and how many of its examples were used. */
export interface DataPosition {
  epoch: number;
  cursor: number;
}

/** The data position after `step` optimizer steps from the start. */
export function positionAt(step: number, plan: StepPlan, a: TrainingArgs): DataPosition {
  const per = a.gradientAccumulationSteps * a.perDeviceTrainBatchSize;
  return { epoch: Math.floor(step / plan.stepsPerEpoch), cursor: (step % plan.stepsPerEpoch) * per };
}

/** Walks the epochs' orders from a position, handing out one optimizer step's micro-batches at a time. */
export class StepSampler {
  private order: number[];

  constructor(
    private pos: DataPosition,
    private readonly n: number,
    private readonly seed: number,
    private readonly batchSize: number,
    private readonly accumulation: number,
  ) {
    this.order = epochOrder(seed, pos.epoch, n);
  }

  /** The position of the next step's first example. */
  get position(): DataPosition {
    return this.pos;
  }

  /** The example indices of the next step's micro-batches: up to `accumulation` batches of this epoch. */
  next(): number[][] {
    if (this.pos.cursor >= this.order.length) {
      this.pos = { epoch: this.pos.epoch + 1, cursor: 0 };
      this.order = epochOrder(this.seed, this.pos.epoch, this.n);
    }
    const micro: number[][] = [];
    for (let m = 0; m < this.accumulation && this.pos.cursor < this.order.length; m++) {
      micro.push(this.order.slice(this.pos.cursor, this.pos.cursor + this.batchSize));
      this.pos = { epoch: this.pos.epoch, cursor: this.pos.cursor + this.batchSize };
    }
    return micro;
  }
}
