/**
 * `TrainingArgs`: the options the training loop reads, under Hugging Face's `TrainingArguments` names (camelCase):
 * the values of src/config/training.ts's rows (`TrainingValues`, documented there row by row), less
 * `gradientCheckpointing`, which the trainer sets on its model. `DPOConfig` and `SFTConfig` have every one of them.
 */
import type { TrainingValues } from "../config/training.ts";

export type TrainingArgs = Omit<TrainingValues, "gradientCheckpointing">;

/** Whether the run writes output_dir/metrics.jsonl (report_to unset, "jsonl" or "all"). */
export function writesJsonl(args: TrainingArgs): boolean {
  const r = args.reportTo;
  return r === null || r.includes("jsonl") || r.includes("all");
}
