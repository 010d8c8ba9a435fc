/**
 * The platform in use: Deno's when running under Deno, the browser's otherwise (default.ts; the browser bundle
 * swaps in default_web.ts, so it carries no Deno code). `setPlatform` replaces it whole, `setFiles` and `setSink`
 * one part: a page mounts the folders it reads and writes, or sends log lines to its own view.
 *
 * @module
 */
import { defaultPlatform } from "./default.ts";
import type { Files, Host, Platform, Sink } from "./types.ts";

let current: Platform | null = null;

/** The platform in use. */
export function platform(): Platform {
  return current ??= defaultPlatform();
}

/** Replaces the platform (null: back to the default). Returns the one it replaced. */
export function setPlatform(p: Platform | null): Platform {
  const before = platform();
  current = p;
  return before;
}

/** File access of the platform in use. */
export function files(): Files {
  return platform().files;
}

/** Environment facts of the platform in use. */
export function host(): Host {
  return platform().host;
}

/** Where log lines and warnings go. */
export function sink(): Sink {
  return platform().sink;
}

/** Replaces the file access, keeping the rest. Returns the one it replaced. */
export function setFiles(f: Files): Files {
  const before = files();
  current = { ...platform(), files: f };
  return before;
}

/** Sends log lines and warnings to `s`, keeping the rest. Returns the sink it replaced. */
export function setSink(s: Sink): Sink {
  const before = sink();
  current = { ...platform(), sink: s };
  return before;
}
