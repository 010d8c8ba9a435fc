/**
 * Ctrl-C during `train()`: the first SIGINT asks the loop to stop after the current step (it then saves a
 * checkpoint), a second one quits at once with exit code 130. Platforms without SIGINT listeners (a browser)
 * keep `requestStop()` and the stop signal.
 */
import { host } from "../io/platform.ts";

/** Listens for SIGINT until the returned function is called. */
export function listenForInterrupts(requestStop: () => void, print: (line: string) => void): () => void {
  let count = 0;
  const handler = () => {
    if (++count === 1) {
      requestStop();
      print(
        "webdpo: interrupt received; saving a checkpoint after the current step (Ctrl-C again quits without saving)",
      );
    } else {
      print("webdpo: second interrupt; quitting without saving");
      host().exit(130);
    }
  };
  // a platform without SIGINT: requestStop() and stopSignal still work
  return host().onInterrupt(handler) ?? (() => {});
}

/** What a stopped run prints: where its checkpoint is and how to resume from it. */
export function interruptedMessage(
  step: number,
  maxSteps: number,
  checkpoint: string,
  outputDir: string,
): string {
  return `webdpo: training interrupted at step ${step}/${maxSteps}; checkpoint saved to ${checkpoint}. ` +
    `Resume with --resume_from_checkpoint ${checkpoint} (or resume_from_checkpoint: true for the latest ` +
    `checkpoint in ${outputDir})`;
}
