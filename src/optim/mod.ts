/** Optimisation: fused AdamW, global gradient-norm clipping and learning-rate schedules. */
export {
  AdamW,
  type AdamWGroup,
  type AdamWGroupState,
  type AdamWOptions,
  type AdamWParamState,
  type AdamWState,
  isNoDecayName,
  type ParamGroup,
  type StepOptions,
  weightDecayGroups,
} from "./adamw.ts";
export { type BindingLimitOptions } from "../gpu/binding.ts";
export {
  clipGradNorm,
  type ClipGradNormOptions,
  type ClipResult,
  gradNorm,
  type GradNormOptions,
  scaleGrads,
} from "./grad_norm.ts";
export {
  lrAt,
  type LrAtOptions,
  lrLambda,
  LRScheduler,
  type ScheduledOptimizer,
  type ScheduleOptions,
  SCHEDULER_TYPES,
  type SchedulerType,
  warmupStepsFor,
} from "./schedule.ts";
