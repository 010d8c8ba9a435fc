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
  resolveDpoLossConfig,
  type ResolvedDpoLossConfig,
} from "./loss.ts";
export { isSyncStep, mixInto } from "./sync_ref.ts";
