/**
 * `resume_from_checkpoint`: which checkpoint a run resumes from. `true` takes the complete checkpoint with the
 * highest step in output_dir (a newer incomplete one is skipped, with what it lacks); a path must be a complete
 * checkpoint, and an output folder given by mistake is answered with its latest checkpoint. The checkpoint's
 * files are then checked against its manifest (checkpoint_manifest.ts): a damaged one is refused by name, with
 * the checkpoint before it to resume from instead.
 */
import { CheckpointError, checkpointStep, missingCheckpointFiles, scanCheckpoints } from "./checkpoint.ts";
import { verifyCheckpoint } from "./checkpoint_manifest.ts";

/** The checkpoint to resume from, or null to start afresh. */
export async function resumeCheckpoint(
  resumeFrom: boolean | string | null,
  outputDir: string,
  print: (line: string) => void,
  fail: (message: string) => Error,
): Promise<string | null> {
  if (resumeFrom === null || resumeFrom === false) return null;
  const path = await resolveCheckpoint(resumeFrom, outputDir, print, fail);
  await verified(path);
  return path;
}

async function resolveCheckpoint(
  resumeFrom: true | string,
  outputDir: string,
  print: (line: string) => void,
  fail: (message: string) => Error,
): Promise<string> {
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

/** Checks `dir` against its manifest; a damaged file is refused, naming the checkpoint before it if any. */
async function verified(dir: string): Promise<void> {
  try {
    await verifyCheckpoint(dir);
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    const before = await checkpointBefore(dir);
    throw new CheckpointError(
      `cannot resume: ${e.message}` +
        (before ? `; resume from the checkpoint before it instead (resume_from_checkpoint: ${before})` : ""),
    );
  }
}

/** The complete checkpoint with the highest step below `dir`'s, in the same folder, or null. */
async function checkpointBefore(dir: string): Promise<string | null> {
  const trimmed = dir.replace(/[\\/]+$/, "");
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  const step = checkpointStep(trimmed.slice(cut + 1));
  if (step === null) return null;
  const { complete } = await scanCheckpoints(cut < 0 ? "." : trimmed.slice(0, cut));
  const earlier = complete.filter((c) => c.step < step);
  return earlier.length ? earlier[earlier.length - 1].path : null;
}
