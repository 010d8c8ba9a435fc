/**
 * Training progress: on a TTY a bar redrawn in place (step/total, elapsed, ETA, it/s, the latest loss and reward
 * accuracy); otherwise one plain line per log. `disable_tqdm` turns the bar off (log lines remain).
 */
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

export class Progress {
  private readonly start = performance.now();
  private readonly tty: boolean;
  private lastDraw = 0;
  private latest: Record<string, number> = {};

  constructor(readonly total: number, readonly enabled: boolean, private readonly out = Deno.stderr) {
    this.tty = enabled && out.isTerminal();
  }

  private write(s: string): void {
    this.out.writeSync(new TextEncoder().encode(s));
  }

  /** Redraws the bar after a step (throttled to 10 redraws a second). */
  update(step: number, values: Record<string, number> = {}): void {
    Object.assign(this.latest, values);
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && step < this.total) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = step / Math.max(elapsed, 1e-9);
    const eta = (this.total - step) / Math.max(rate, 1e-9);
    const width = 24;
    const filled = Math.round((width * step) / Math.max(1, this.total));
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const extras = ["loss", "rewards/accuracies", "rewards/margins"]
      .filter((k) => k in this.latest)
      .map((k) => `${k.replace("rewards/", "")}=${fmtNum(this.latest[k])}`)
      .join(" ");
    this.write(
      `\r\x1b[2K${bar} ${step}/${this.total} [${fmtTime(elapsed)}<${fmtTime(eta)}, ${
        rate.toFixed(2)
      } it/s] ${extras}`,
    );
  }

  /** Prints a log line (above the bar on a TTY). */
  log(entry: Record<string, number | string>): void {
    const text = Object.entries(entry)
      .map(([k, v]) => `${k}=${typeof v === "number" ? fmtNum(v) : v}`)
      .join("  ");
    if (this.tty) this.write(`\r\x1b[2K${text}\n`);
    else console.log(text);
  }

  /** Ends the bar's line. */
  close(): void {
    if (this.tty) this.write("\n");
  }
}
