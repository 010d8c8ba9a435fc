/** Supervised fine-tuning (the stage before DPO): SFTConfig and SFTTrainer. */
export { SFTConfig, SFTConfigError, type SFTConfigInit, type SFTConfigValues } from "./config.ts";
export {
  type SFTCallback,
  SFTTrainer,
  type SFTTrainerOptions,
  type SFTTrainerState,
  SFTTrainingError,
  type SFTTrainOutput,
} from "./trainer.ts";
export { collateSft, type SFTBatch, type SFTExample, tokenizeSftRow } from "./data.ts";
