/** The progress bar moved to the training loop (src/train/progress.ts); re-exported under its old path. */
export * from "../train/progress.ts";
