/** Training checkpoints moved to the training loop (src/train/checkpoint.ts); re-exported under their old path. */
export * from "../train/checkpoint.ts";
