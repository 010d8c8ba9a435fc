/** The JSON Lines logs moved to the training loop (src/train/metrics_log.ts); re-exported under their old path. */
export * from "../train/metrics_log.ts";
