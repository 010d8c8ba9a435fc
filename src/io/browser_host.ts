/**
 * The host facts of a browser tab or worker: no environment variables, no process to end, no SIGINT (a page
 * stops a run with the trainer's `stopSignal`), no terminal (log lines go to the sink), memory unknown.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Host } from "./types.ts";

/** A browser's host facts. */
export const browserHost: Host = {
  name: "browser",
  env: () => undefined,
  availableMemory: () => null,
  onInterrupt: () => null,
  exit(code: number): never {
    throw new Error(
      `webdpo: exit(${code}) was asked for, but a browser tab has no process to end (stop training with ` +
        "the trainer's stopSignal or stop())",
    );
  },
  terminal: () => null,
  prepareWebGpu: () => "",
  sha256() {
    const h = sha256.create();
    return { update: (bytes) => void h.update(bytes), hex: () => bytesToHex(h.digest()) };
  },
};
