/**
 * The platform seam: everything webdpo asks of its host besides WebGPU. `Files` is file access (paths are
 * `/`-separated strings), `Host` the facts of the environment (variables, memory, signals, a terminal), and
 * `Sink` where progress lines, log lines and warnings go. Two platforms implement them: Deno's (deno.ts) and the
 * browser's (browser.ts, browser_host.ts); platform.ts holds the one in use.
 *
 * Errors: a path that does not exist is an Error whose `name` is "NotFound" (Deno's own `NotFound` error
 * has that name, and the browser implementation throws `FileNotFoundError`), so `isNotFound` works on both.
 *
 * @module
 */

/** What `stat` tells of a path (symbolic links followed). */
export interface FileStat {
  isFile: boolean;
  isDirectory: boolean;
  /** Bytes (0 for a folder where the platform has no size for it). */
  size: number;
}

/** One entry of a folder, as `list` gives it. */
export interface DirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  /** A symbolic link (its target's kind then needs a `stat`); always false in a browser. */
  isSymlink: boolean;
}

/** A file open for reads at any position (a safetensors file's tensors, a Parquet file's column chunks). */
export interface RandomAccessFile {
  /** The file's size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from byte `position`; a RangeError when the file ends before. */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A file being written from its start, piece by piece (a safetensors file, one tensor at a time). */
export interface FileWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** Finishes the file. */
  close(): Promise<void>;
  /** Gives up: what was written is discarded where the platform can (a browser), else left as it is. */
  abort(): Promise<void>;
}

/** File access. Every method takes `/`-separated paths. */
export interface Files {
  /** The whole file as UTF-8 text. */
  readText(path: string): Promise<string>;
  /** The whole file's bytes (for small files: a large one is read with `open` or `stream`). */
  readBytes(path: string): Promise<Uint8Array>;
  /** The file's bytes as a stream, read as they are consumed. */
  stream(path: string): Promise<ReadableStream<Uint8Array>>;
  /** Opens a file for reads of byte ranges. */
  open(path: string): Promise<RandomAccessFile>;
  /** What the path is, or null when nothing is there; other failures (permissions) are thrown. */
  stat(path: string): Promise<FileStat | null>;
  /** The entries of a folder, in no particular order. */
  list(dir: string): Promise<DirEntry[]>;
  /** The path with links resolved (a browser: the path normalised), so a walk can tell folders it has seen. */
  realPath(path: string): Promise<string>;
  /** Replaces (or creates) the file with `text` atomically: a reader sees the old or the new content. */
  writeText(path: string, text: string): Promise<void>;
  /** Appends `text` to the file, creating it when missing. */
  appendText(path: string, text: string): Promise<void>;
  /** Creates (or truncates) the file for writing from its start. */
  create(path: string): Promise<FileWriter>;
  /** Creates a folder and the folders above it; an existing folder is fine. */
  mkdir(path: string): Promise<void>;
  /** Removes a file, or a folder with everything in it. */
  remove(path: string): Promise<void>;
  /** Moves a file or folder to a path that does not exist yet (a folder's rename is atomic where the platform can). */
  rename(from: string, to: string): Promise<void>;
  /** Flushes a file's (or, where the platform can, a folder's entries') writes to disk; a no-op where it cannot. */
  sync(path: string, directory: boolean): Promise<void>;
}

/** Where the progress bar is drawn: a terminal (stderr under Deno, or a fake one in tests). */
export interface ProgressStream {
  isTerminal(): boolean;
  writeSync(p: Uint8Array): number;
}

/** An incremental SHA-256 (checkpoint manifests hash files piece by piece). */
export interface Sha256 {
  update(bytes: Uint8Array): void;
  /** The digest as 64 lowercase hex digits (ends the hash). */
  hex(): string;
}

/** Facts of the environment that only some hosts have, and what it does natively. */
export interface Host {
  /** The platform's name, for messages ("deno", "browser"). */
  readonly name: string;
  /** An environment variable, or undefined (unset, not allowed, or a host without them). */
  env(name: string): string | undefined;
  /** Bytes the system can still give this process, or null where that is unknown. */
  availableMemory(): number | null;
  /**
   * Calls `handler` on each interrupt request (SIGINT, Ctrl-C) until the returned function is called; null where
   * the host has no such signal (a browser: stop a run with the trainer's `stopSignal` instead).
   */
  onInterrupt(handler: () => void): (() => void) | null;
  /** Ends the process with this exit code; throws where there is no process to end (a browser tab). */
  exit(code: number): never;
  /** The terminal a progress bar may be drawn on, or null where there is none. */
  terminal(): ProgressStream | null;
  /**
   * Runs once before the first WebGPU adapter request: Deno on Linux quiets Mesa and picks wgpu's Vulkan
   * backend where a Vulkan driver is installed. Returns a sentence to add to a "no adapter" error, or "".
   */
  prepareWebGpu(): string;
  /** A new SHA-256 (Deno: node:crypto's native one; a browser: @noble/hashes, as WebCrypto cannot stream). */
  sha256(): Sha256;
}

/** Where log lines and warnings go (default: the console). */
export interface Sink {
  /** A log line (the trainer's metrics lines, checkpoint notes). */
  log(line: string): void;
  /** A warning, already worded (callers add the "webdpo: " prefix). */
  warn(message: string): void;
}

/** The whole platform: files, host facts, and the sink. */
export interface Platform {
  files: Files;
  host: Host;
  sink: Sink;
}

/** A path that does not exist (the browser implementation's; Deno throws its own `NotFound`). */
export class FileNotFoundError extends Error {
  override name = "NotFound";
}

/** A path that names a file where a folder was expected, or the reverse. */
export class NotADirectoryError extends Error {
  override name = "NotADirectory";
}

/** Whether `e` says the path does not exist (on any platform). */
export function isNotFound(e: unknown): boolean {
  return e instanceof Error && e.name === "NotFound";
}

/** Whether `e` says a path component is a file, not a folder (on any platform). */
export function isNotADirectory(e: unknown): boolean {
  return e instanceof Error && e.name === "NotADirectory";
}
