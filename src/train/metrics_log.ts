/**
 * JSON Lines sinks of a run: `output_dir/metrics.jsonl` (one object per train log, evaluation and the final
 * summary, each with its `step`) and `output_dir/generations.jsonl` (generate_during_eval's samples).
 *
 * A fresh run starts the files anew; a resumed run keeps the lines up to the checkpoint's step and drops the
 * rest (what the interrupted run wrote after its last checkpoint), so the file reads as one uninterrupted run.
 */
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
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    if (keepUpToStep === null) {
      await Deno.remove(this.path);
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
    await Deno.writeTextFile(this.path, kept.map((l) => l + "\n").join(""));
  }

  /** Appends one object as a line (creating the folder and the file when needed). */
  async append(entry: Record<string, unknown>): Promise<void> {
    if (!this.enabled) return;
    await this.ensureDir();
    await Deno.writeTextFile(this.path, JSON.stringify(entry, jsonNumbers) + "\n", {
      append: true,
      create: true,
    });
  }

  private async ensureDir(): Promise<void> {
    if (this.prepared) return;
    const dir = this.path.replace(/[\\/][^\\/]*$/, "");
    if (dir && dir !== this.path) await Deno.mkdir(dir, { recursive: true });
    this.prepared = true;
  }
}

/** JSON has no NaN/Infinity: a replacer that writes them as the strings "NaN", "Infinity", "-Infinity". */
export function jsonNumbers(_key: string, v: unknown): unknown {
  return typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}
