/**
 * `resume_from_checkpoint`: which checkpoint a run resumes from. `true` takes the complete checkpoint with the
 * highest step in output_dir (a newer incomplete one is skipped, with what it lacks); a path must be a complete
 * checkpoint, and an output folder given by mistake is answered with its latest checkpoint.
 */
import { missingCheckpointFiles, scanCheckpoints } from "./checkpoint.ts";

/** The checkpoint to resume from, or null to start afresh. */
export async function resumeCheckpoint(
  resumeFrom: boolean | string | null,
  outputDir: string,
  print: (line: string) => void,
  fail: (message: string) => Error,
): Promise<string | null> {
  if (resumeFrom === null || resumeFrom === false) return null;
  if (resumeFrom === true) {
    const { complete, incomplete } = await scanCheckpoints(outputDir);
    for (const c of incomplete) {
      if (complete.length && c.step > complete[complete.length - 1].step) {
        print(`webdpo: skipping ${c.path}: incomplete (no ${c.missing.join(", ")})`);
      }
    }
    if (complete.length === 0) {
      throw fail(
        `resume_from_checkpoint: true, but ${outputDir} holds no complete checkpoint-<step> folder; start ` +
          `without resume_from_checkpoint, or give the path of a checkpoint`,
      );
    }
    return complete[complete.length - 1].path;
  }
  const missing = await missingCheckpointFiles(resumeFrom);
  if (missing.length) {
    const { complete } = await scanCheckpoints(resumeFrom);
    throw fail(
      complete.length
        ? `resume_from_checkpoint: ${resumeFrom} is an output folder, not a checkpoint; give one of its ` +
          `checkpoints (latest: ${complete[complete.length - 1].path}), or set output_dir to it and ` +
          `resume_from_checkpoint: true`
        : `resume_from_checkpoint: ${resumeFrom} is not a complete checkpoint (no ${missing.join(", ")})`,
    );
  }
  return resumeFrom;
}
