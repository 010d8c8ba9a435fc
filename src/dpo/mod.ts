/** DPO: losses, reference-model updates (and, as it lands, the trainer). */
export {
  BcoRunningMean,
  DPO_LOSS_METRICS,
  DPO_LOSS_TYPES,
  dpoLoss,
  type DpoLossConfig,
  type DpoLossInputs,
  type DpoLossOptions,
  type DpoLossOutput,
  type DpoLossType,
  F_DIVERGENCE_TYPES,
  type FDivergenceType,
  resetDpoLossWarnings,
  type ResolvedDpoLossConfig,
  resolveDpoLossConfig,
} from "./loss.ts";
export { isSyncStep, mixInto } from "./sync_ref.ts";
export {
  camelToSnake,
  ConfigError,
  DPOConfig,
  type DPOConfigInit,
  type DPOConfigOptions,
  type DPOConfigValues,
  intervalSteps,
  resetPrintedConfigWarnings,
  snakeToCamel,
} from "./config.ts";
export { CONFIG_FIELDS, FIELDS, type FieldSpec, LOSS_TYPE_NAMES, SCRIPT_FIELDS } from "./config_table.ts";
export {
  DPOTrainer,
  type DPOTrainerOptions,
  type TrainerCallback,
  type TrainerState,
  TrainingError,
  type TrainOutput,
} from "./trainer.ts";
export { type PairLogps, pairLogps, type TokenValues } from "./batch.ts";
export {
  CHECKPOINT_FILES,
  CheckpointError,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  scanCheckpoints,
} from "./checkpoint.ts";
export { type ProgressStream } from "./progress.ts";
export { adapterBase, loadPolicy, loadReference, type ReferenceKind } from "./lora_reference.ts";
