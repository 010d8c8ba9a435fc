/**
 * JSON Lines sinks of a run: `output_dir/metrics.jsonl` (one object per train log, evaluation and the final
 * summary, each with its `step`) and `output_dir/generations.jsonl` (generate_during_eval's samples).
 *
 * A fresh run starts the files anew; a resumed run keeps the lines up to the checkpoint's step and drops the
 * rest (what the interrupted run wrote after its last checkpoint), so the file reads as one uninterrupted run.
 *
 * A read or write the file system refuses (a full disk, a folder that became read-only, a path that is a folder)
 * is a MetricsLogError naming the file and what was being done, in place of the operating system's bare error,
 * which the CLI would report as an internal error.
 */
import { WebDPOError } from "../gpu/errors.ts";
import { files } from "../io/platform.ts";
import { isNotFound } from "../io/types.ts";

/** A JSON Lines log (metrics.jsonl, generations.jsonl) could not be read or written. */
export class MetricsLogError extends WebDPOError {}

/** The error of `doing` on the log at `path` that failed with `e`. */
function logFailure(path: string, doing: string, e: unknown): MetricsLogError {
  const full = (e as { code?: unknown } | null)?.code === "ENOSPC";
  const name = path.slice(path.search(/[^\\/]*$/));
  return Object.assign(
    new MetricsLogError(
      `${path}: cannot ${doing} (${e instanceof Error ? e.message : e})` +
        (full ? `. The disk is full: free some space, or set report_to to "none" to write no ${name}` : ""),
    ),
    { cause: e },
  );
}

export class JsonlLog {
  private prepared = false;

  /** `enabled` false (report_to none) makes every call a no-op. */
  constructor(readonly path: string, readonly enabled: boolean) {}

  /**
   * Starts the file for a run: removes it (`keepUpToStep` null) or keeps only the lines whose `step` is at most
   * `keepUpToStep` (a resumed run). Lines that are not JSON objects with a numeric step are dropped.
   */
  async start(keepUpToStep: number | null): Promise<void> {
    if (!this.enabled) return;
    await this.ensureDir();
    let text: string;
    try {
      text = await files().readText(this.path);
    } catch (e) {
      if (isNotFound(e)) return;
      throw logFailure(this.path, "read it to start the run's log", e);
    }
    if (keepUpToStep === null) {
      try {
        await files().remove(this.path);
      } catch (e) {
        throw logFailure(this.path, "remove the previous run's log", e);
      }
      return;
    }
    const kept = text.split("\n").filter((line) => {
      if (!line.trim()) return false;
      try {
        const o = JSON.parse(line);
        return typeof o?.step === "number" && o.step <= keepUpToStep;
      } catch {
        return false;
      }
    });
    try {
      await files().writeText(this.path, kept.map((l) => l + "\n").join(""));
    } catch (e) {
      throw logFailure(this.path, `rewrite it with the lines up to step ${keepUpToStep}`, e);
    }
  }

  /** Appends one object as a line (creating the folder and the file when needed). */
  async append(entry: Record<string, unknown>): Promise<void> {
    if (!this.enabled) return;
    await this.ensureDir();
    const line = JSON.stringify(entry, jsonNumbers) + "\n";
    try {
      await files().appendText(this.path, line);
    } catch (e) {
      const step = typeof entry.step === "number" ? ` of step ${entry.step}` : "";
      throw logFailure(this.path, `append the line${step}`, e);
    }
  }

  private async ensureDir(): Promise<void> {
    if (this.prepared) return;
    const dir = this.path.replace(/[\\/][^\\/]*$/, "");
    try {
      if (dir && dir !== this.path) await files().mkdir(dir);
    } catch (e) {
      throw logFailure(this.path, `make its folder ${dir}`, e);
    }
    this.prepared = true;
  }
}

/** JSON has no NaN/Infinity: a replacer that writes them as the strings "NaN", "Infinity", "-Infinity". */
export function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}
