/**
 * The training loop every trainer runs on (DPOTrainer, SFTTrainer): subclass `Trainer` with a micro-batch loss to
 * make another one.
 */
export { type TrainingArgs } from "./args.ts";
export {
  type CheckpointExtras,
  type MicroBatchOutput,
  type TrainerOptions,
  type TrainerSetup,
} from "./options.ts";
export { type DataPosition, epochOrder, planSteps, type StepPlan, StepSampler } from "./plan.ts";
export {
  initialTrainerState,
  type TrainerCallback,
  type TrainerState,
  TrainingError,
  type TrainOutput,
} from "./state.ts";
export { Trainer } from "./trainer.ts";
export { MetricsLogError } from "./metrics_log.ts";
