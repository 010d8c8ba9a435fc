/**
 * Training progress. On a terminal, a bar redrawn in place on one line (step/total, elapsed, ETA, it/s, the latest
 * loss, and DPO's reward accuracy and margin), with log lines printed above it. Not on a terminal (a file, a
 * pipe, CI), or with `disable_tqdm`, no bar is drawn: the trainer prints its log lines as plain lines instead.
 */

import { host } from "../io/platform.ts";
import type { ProgressStream } from "../io/types.ts";

/** Where the bar is drawn (the host's terminal by default: stderr under Deno; tests pass a fake terminal). */
export type { ProgressStream };

/** No terminal (a browser): no bar is drawn. */
const NO_TERMINAL: ProgressStream = { isTerminal: () => false, writeSync: (p) => p.length };

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`
    : `${m}:${String(sec).padStart(2, "0")}`;
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}

const CLEAR_LINE = "\r\x1b[2K";

export class Progress {
  private readonly start = performance.now();
  /** Whether a bar is drawn (enabled and the stream is a terminal). */
  readonly active: boolean;
  private lastDraw = -Infinity;
  private bar = "";
  private latest: Record<string, number> = {};

  /**
   * @param total the last step
   * @param enabled false with `disable_tqdm`
   * @param out the terminal the bar is drawn on
   * @param first the step the run starts from (a resumed run), so that it/s and the ETA count this session only
   */
  constructor(
    readonly total: number,
    enabled: boolean,
    private readonly out: ProgressStream = host().terminal() ?? NO_TERMINAL,
    private readonly first = 0,
  ) {
    this.active = enabled && out.isTerminal();
  }

  private write(s: string): void {
    const bytes = new TextEncoder().encode(s);
    let done = 0;
    while (done < bytes.length) done += this.out.writeSync(bytes.subarray(done));
  }

  /** Redraws the bar after a step (at most 10 redraws a second, and always at the last step). */
  update(step: number, values: Record<string, number> = {}): void {
    Object.assign(this.latest, values);
    if (!this.active) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && step < this.total) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = (step - this.first) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - step) / rate : NaN;
    const width = 24;
    const filled = Math.min(width, Math.round((width * step) / Math.max(1, this.total)));
    const extras = ["loss", "rewards/accuracies", "rewards/margins"]
      .filter((k) => k in this.latest)
      .map((k) => `${k.replace("rewards/", "")}=${fmtNum(this.latest[k])}`)
      .join(" ");
    this.bar = `${"█".repeat(filled)}${"░".repeat(width - filled)} ${step}/${this.total} ` +
      `[${fmtTime(elapsed)}<${fmtTime(eta)}, ${rate.toFixed(2)} it/s] ${extras}`.trimEnd();
    this.write(CLEAR_LINE + this.bar);
  }

  /**
   * Prints a line above the bar when a bar is drawn (and redraws the bar under it); returns false, printing
   * nothing, when there is no bar, so the caller prints the line its own way.
   */
  log(line: string): boolean {
    if (!this.active) return false;
    this.write(`${CLEAR_LINE}${line}\n${this.bar}`);
    return true;
  }

  /** Ends the bar's line. */
  close(): void {
    if (this.active && this.bar) this.write("\n");
    this.bar = "";
  }
}

/** A log entry as one line: `key=value` pairs, numbers with 4 decimals (exponents when tiny or huge). */
export function formatLogLine(entry: Record<string, number | string>): string {
  return Object.entries(entry)
    .map(([k, v]) => `${k}=${typeof v === "number" ? fmtEntry(v) : v}`)
    .join("  ");
}

function fmtEntry(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return fmtNum(v);
}
