/**
 * The console as a `Sink`: log lines to `console.log`, warnings to `console.warn` (a browser shows both in its
 * developer tools). A page or a program that wants them elsewhere calls `setSink` (platform.ts).
 *
 * @module
 */
import type { Sink } from "./types.ts";

/** Log lines and warnings to the console. */
export const consoleSink: Sink = {
  log: (line) => console.log(line),
  warn: (message) => console.warn(message),
};
