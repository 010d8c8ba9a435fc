/**
 * ParserSandbox: runs parsers on fuzzed files in a worker, one case at a time, so a case that never ends (a
 * synchronous loop as much as a promise that never settles) is caught by a timeout and the worker replaced,
 * instead of hanging the test process.
 */

/** One case: the files of a folder (names may hold "/"), and the target to run on it. */
export interface SandboxRequest {
  /** The module (URL) exporting the target: `async (dir, args) => summary`. */
  module: string;
  target: string;
  files: Record<string, Uint8Array>;
  args?: unknown;
}

/** How a case ended: a result, an error, or no answer within the time limit. */
export type Outcome =
  | { kind: "result"; summary: unknown; ms: number; memoryGrowth: number }
  | {
    kind: "error";
    /** Whether the error is a WebDPOError. */
    typed: boolean;
    name: string;
    message: string;
    stack: string;
    ms: number;
    memoryGrowth: number;
  }
  | { kind: "timeout"; ms: number };

export class ParserSandbox {
  #worker: Worker | null = null;

  /**
   * `timeoutMs` bounds each case; `startupMs` bounds a new worker's loading of the targets module (its imports can
   * take seconds on a busy machine).
   */
  constructor(readonly timeoutMs: number, readonly startupMs = 60_000) {}

  /** Runs one case; a worker that does not answer within `timeoutMs` is terminated (the next run starts anew). */
  async run(req: SandboxRequest): Promise<Outcome> {
    if (this.#worker === null) {
      this.#worker = new Worker(new URL("./fuzz_sandbox_worker.ts", import.meta.url), { type: "module" });
      const loaded = await this.#call({ module: req.module, target: "", files: {} }, this.startupMs);
      if (loaded.kind !== "result") return loaded;
    }
    return await this.#call(req, this.timeoutMs);
  }

  #call(req: SandboxRequest, timeoutMs: number): Promise<Outcome> {
    const worker = this.#worker!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        resolve({ kind: "timeout", ms: timeoutMs });
      }, timeoutMs);
      worker.onmessage = (ev: MessageEvent<Outcome>) => {
        clearTimeout(timer);
        resolve(ev.data);
      };
      worker.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        clearTimeout(timer);
        this.close();
        reject(new Error(`the fuzz worker failed: ${ev.message}`));
      };
      worker.postMessage(req);
    });
  }

  close(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }
}
