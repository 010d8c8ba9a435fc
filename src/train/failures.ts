/**
 * What a run says when the machine fails under it, in place of the bare error of the layer that noticed:
 *
 * - a checkpoint that could not be written (a full disk, a folder that became read-only): the operating system's
 *   error names neither the checkpoint nor, for a write, the file, and is not a WebDPOError, so the CLI would
 *   call it an internal error. It becomes a CheckpointError naming the checkpoint, saying that nothing of it was
 *   kept (checkpoint.ts removes the temporary folder) and which checkpoint is the last good one;
 * - a lost GPU device (a driver reset, the device destroyed): depending on where the loss is noticed, WebGPU
 *   reports it as a failed readback ("validation error occurred") before `device.lost` settles. When the device
 *   turns out lost, the error is a DeviceLostError with the reason, the step, and the checkpoint to resume from
 *   in a new process.
 */
import { DeviceLostError, WebDPOError } from "../gpu/errors.ts";
import { CheckpointError } from "./checkpoint.ts";

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  return Object.assign(error, { cause });
}

/** How a message names the last good checkpoint. */
function lastGood(checkpoint: string | null): string {
  return checkpoint ? `the last good checkpoint is ${checkpoint}` : "no checkpoint was saved before it";
}

/** The error of a save of `checkpoint` that failed with `e` (a WebDPOError stays as it is). */
export function saveFailure(e: unknown, checkpoint: string, last: string | null): unknown {
  if (e instanceof WebDPOError) return e;
  const full = (e as { code?: unknown } | null)?.code === "ENOSPC";
  return withCause(
    new CheckpointError(
      `${checkpoint}: the checkpoint could not be written (${messageOf(e)}); nothing of it was kept, and ` +
        `${lastGood(last)}` +
        (full ? ". The disk is full: free some space, or keep fewer checkpoints with save_total_limit" : ""),
    ),
    e,
  );
}

/** Why a device was lost (src/gpu/device.ts), for the trainer. */
export { deviceLossReason } from "../gpu/device.ts";

/** The error that stops a run whose device was lost (`reason`) after `step` optimizer steps. */
export function deviceLost(e: unknown, reason: string, step: number, last: string | null): DeviceLostError {
  const resume = last
    ? `; resume in a new process from the last good checkpoint, ${last} (--resume_from_checkpoint ${last})`
    : "; no checkpoint was saved before it, so the run starts again";
  return withCause(
    new DeviceLostError(
      `the WebGPU device was lost (${reason}) after step ${step}; training stopped, and the weights it held ` +
        `are gone${resume}`,
    ),
    e,
  );
}
