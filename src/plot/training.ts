/**
 * `training.svg`: the picture of a DPO run. Reads the log entries of an output folder — `trainer_state.json`'s
 * `log_history` (Hugging Face's layout), else `metrics.jsonl` (one JSON object per line), else the newest
 * `checkpoint-<step>/trainer_state.json` — and draws four panels against the optimizer step: the loss, the reward
 * margin, the reward accuracy and the chosen/rejected rewards, each with the training series and the evaluation
 * series (the `eval_`-prefixed keys) in two colours, a legend with the latest values, and a title line that sums
 * the run up. Hand-written SVG, no dependencies.
 *
 * @module
 */
import { WebDPOError } from "../gpu/errors.ts";
import { files } from "../io/platform.ts";
import { type FileStat, isNotFound } from "../io/types.ts";
import { type Box, legendRows, panel, type PanelSpec, type Series } from "./chart.ts";
import { el, esc, shortNumber, text } from "./svg.ts";

/** A log entry: numeric metrics with the optimizer `step` (others, such as strings, are dropped). */
export type LogEntry = Record<string, number>;

/** The plot could not be made (no logs, unreadable logs). */
export class PlotError extends WebDPOError {}

/** The colours of the training and evaluation series. */
export const TRAIN_COLOR = "#1f6fd1";
export const EVAL_COLOR = "#e8710a";

async function readText(path: string): Promise<string | null> {
  try {
    return await files().readText(path);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw new PlotError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
}

function numericEntry(raw: unknown): LogEntry | null {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return null;
  const out: LogEntry = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v === "number") out[k] = v;
    // NaN and Infinity cannot be JSON numbers; Python's json writes them bare, some writers quote them
    else if (v === "NaN" || v === "Infinity" || v === "-Infinity") out[k] = Number(v);
  }
  if (out.step === undefined && typeof out.global_step === "number") out.step = out.global_step;
  return typeof out.step === "number" ? out : null;
}

/** Python's json module writes NaN/Infinity bare; turn them into strings JSON.parse accepts. */
function parsePythonJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return JSON.parse(s.replace(/(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '"$1"'));
  }
}

/** The log entries of `trainer_state.json` text (`log_history`). */
export function parseTrainerState(textContent: string, where: string): LogEntry[] {
  let state: unknown;
  try {
    state = parsePythonJson(textContent);
  } catch (e) {
    throw new PlotError(`${where}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  const history = (state as { log_history?: unknown })?.log_history;
  if (!Array.isArray(history)) throw new PlotError(`${where}: no log_history array`);
  return history.map(numericEntry).filter((e): e is LogEntry => e !== null);
}

/** The log entries of `metrics.jsonl` text (one object per line with a `step`). */
export function parseMetricsJsonl(textContent: string, where: string): LogEntry[] {
  const out: LogEntry[] = [];
  textContent.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let row: unknown;
    try {
      row = parsePythonJson(line);
    } catch (e) {
      throw new PlotError(`${where} line ${i + 1}: not valid JSON (${e instanceof Error ? e.message : e})`);
    }
    const entry = numericEntry(row);
    if (entry) out.push(entry);
  });
  return out;
}

/** The log entries of a run's output folder and the file they came from. */
export async function readTrainingLog(dir: string): Promise<{ entries: LogEntry[]; source: string }> {
  const d = dir.replace(/\/+$/, "") || "/";
  let info: FileStat | null;
  try {
    info = await files().stat(d);
  } catch {
    info = null;
  }
  if (!info) throw new PlotError(`${d}: no such folder (give a run's output_dir)`);
  if (!info.isDirectory) throw new PlotError(`${d} is not a folder (give a run's output_dir)`);
  const state = `${d}/trainer_state.json`;
  const stateText = await readText(state);
  if (stateText !== null) return { entries: parseTrainerState(stateText, state), source: state };
  const jsonl = `${d}/metrics.jsonl`;
  const jsonlText = await readText(jsonl);
  if (jsonlText !== null) return { entries: parseMetricsJsonl(jsonlText, jsonl), source: jsonl };
  let newest: { step: number; path: string } | null = null;
  for (const e of await files().list(d)) {
    const m = /^checkpoint-(\d+)$/.exec(e.name);
    if (!e.isDirectory || !m) continue;
    const path = `${d}/${e.name}/trainer_state.json`;
    if (Number(m[1]) > (newest?.step ?? -1) && (await readText(path)) !== null) {
      newest = { step: Number(m[1]), path };
    }
  }
  if (newest) {
    return { entries: parseTrainerState((await readText(newest.path))!, newest.path), source: newest.path };
  }
  throw new PlotError(
    `${d}: no trainer_state.json, metrics.jsonl or checkpoint-*/trainer_state.json to plot (is it a run's output_dir?)`,
  );
}

function seriesOf(entries: LogEntry[], key: string): [number, number][] {
  const pts: [number, number][] = [];
  for (const e of entries) if (key in e) pts.push([e.step, e[key]]);
  // a resumed run may log a step twice: keep the later value
  const byStep = new Map<number, number>();
  for (const [s, v] of pts) byStep.set(s, v);
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]);
}

function lastFinite(points: [number, number][]): number | undefined {
  for (let i = points.length - 1; i >= 0; i--) if (Number.isFinite(points[i][1])) return points[i][1];
  return undefined;
}

function firstFinite(points: [number, number][]): number | undefined {
  for (const p of points) if (Number.isFinite(p[1])) return p[1];
  return undefined;
}

function labelled(base: string, points: [number, number][]): string {
  const v = lastFinite(points);
  return v === undefined ? base : `${base} ${shortNumber(v)}`;
}

/**
 * The smoothing of a training series: none up to 60 points, then an EMA whose weight grows with the run (0.75 at
 * 61 points, 0.85 at 100, 0.9 from 150 on), so a long noisy run still shows its trend without lagging far behind.
 */
export function smoothingFor(n: number): number | undefined {
  return n <= 60 ? undefined : Math.min(0.9, Math.max(0.6, 1 - 15 / n));
}

function trainEval(entries: LogEntry[], key: string): Series[] {
  const train = seriesOf(entries, key);
  const ev = seriesOf(entries, `eval_${key}`);
  return [
    {
      id: "train",
      label: labelled("train", train),
      color: TRAIN_COLOR,
      points: train,
      smoothing: smoothingFor(train.length),
    },
    { id: "eval", label: labelled("eval", ev), color: EVAL_COLOR, points: ev, markers: true },
  ];
}

/** Options of `trainingSvg`. */
export interface TrainingSvgOptions {
  /** The heading (default "DPO training"). */
  title?: string;
  /** A note under the summary line, e.g. the source file. */
  note?: string;
}

/** The SVG document of a run's log entries. */
export function trainingSvg(entries: LogEntry[], opts: TrainingSvgOptions = {}): string {
  const W = 1120;
  const H = 800;
  const top = 78;
  const gap = 18;
  const maxStep = entries.reduce((m, e) => Math.max(m, e.step), 0);
  const xDomain: [number, number] = [0, Math.max(1, maxStep)];
  const common = { xLabel: "step", xDomain };
  const chosen = seriesOf(entries, "rewards/chosen");
  const rejected = seriesOf(entries, "rewards/rejected");
  const evChosen = seriesOf(entries, "eval_rewards/chosen");
  const evRejected = seriesOf(entries, "eval_rewards/rejected");
  const panels: PanelSpec[] = [
    { ...common, title: "Loss", metric: "loss", yLabel: "loss", series: trainEval(entries, "loss") },
    {
      ...common,
      title: "Reward margin (chosen − rejected)",
      metric: "rewards/margins",
      yLabel: "rewards/margins",
      series: trainEval(entries, "rewards/margins"),
      refLines: [{ y: 0, label: "0" }],
    },
    {
      ...common,
      title: "Reward accuracy (chosen > rejected)",
      metric: "rewards/accuracies",
      yLabel: "rewards/accuracies",
      yDomain: [0, 1],
      series: trainEval(entries, "rewards/accuracies"),
      refLines: [{ y: 0.5, label: "chance" }],
    },
    {
      ...common,
      title: "Rewards of chosen and rejected",
      metric: "rewards/chosen",
      yLabel: "rewards",
      series: [
        {
          id: "train-chosen",
          label: labelled("chosen", chosen),
          color: TRAIN_COLOR,
          points: chosen,
          smoothing: smoothingFor(chosen.length),
        },
        {
          id: "train-rejected",
          label: labelled("rejected", rejected),
          color: TRAIN_COLOR,
          dash: "6 4",
          points: rejected,
          smoothing: smoothingFor(rejected.length),
        },
        {
          id: "eval-chosen",
          label: labelled("eval chosen", evChosen),
          color: EVAL_COLOR,
          points: evChosen,
          markers: true,
        },
        {
          id: "eval-rejected",
          label: labelled("eval rejected", evRejected),
          color: EVAL_COLOR,
          dash: "6 4",
          points: evRejected,
          markers: true,
        },
      ],
      refLines: [{ y: 0, label: "0" }],
      emptyText: "no rewards/chosen or rewards/rejected in the logs",
    },
  ];
  const pw = (W - 2 * 16 - gap) / 2;
  const ph = (H - top - 14 - gap) / 2;
  const boxes: Box[] = [0, 1, 2, 3].map((i) => ({
    x: 16 + (i % 2) * (pw + gap),
    y: top + Math.floor(i / 2) * (ph + gap),
    w: pw,
    h: ph,
  }));
  // panels side by side get the same number of legend rows, so their plot areas line up
  const rows = [0, 2].map((i) =>
    Math.max(legendRows(panels[i], boxes[i]), legendRows(panels[i + 1], boxes[i + 1]))
  );
  const body = panels.map((p, i) => panel(p, boxes[i], rows[Math.floor(i / 2)])).join("\n");
  const font = "DejaVu Sans, Helvetica, Arial, sans-serif";
  const head = [
    text(24, 34, opts.title ?? "DPO training", { "font-size": 22, "font-weight": "bold", fill: "#202124" }),
    text(24, 58, summary(entries), { "font-size": 13, fill: "#3c4043", class: "summary" }),
  ];
  const notes = opts.note ? [opts.note] : [];
  if (panels.some((p) => p.series.some((s) => s.smoothing !== undefined))) {
    notes.push("solid train lines: moving average; faint: logged values");
  }
  notes.forEach((n, i) => {
    head.push(
      text(W - 24, 34 + 16 * i, n, { "font-size": 11, fill: "#80868b", "text-anchor": "end", class: "note" }),
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<title>${esc(opts.title ?? "DPO training")}</title>`,
    el("rect", { width: W, height: H, fill: "#ffffff" }),
    el("g", { "font-family": font }, head.join("")),
    body,
    "</svg>",
    "",
  ].join("\n");
}

/** The title's summary line: steps, loss and accuracy from first to last log, and the latest evaluation. */
function summary(entries: LogEntry[]): string {
  const steps = entries.reduce((m, e) => Math.max(m, e.step), 0);
  const parts = [`${steps} step${steps === 1 ? "" : "s"}`];
  const fromTo = (name: string, pts: [number, number][], pct = false) => {
    const a = firstFinite(pts);
    const b = lastFinite(pts);
    if (a === undefined || b === undefined) return;
    const f = (v: number) => (pct ? `${(v * 100).toFixed(0)}%` : shortNumber(v));
    parts.push(pts.length > 1 ? `${name} ${f(a)} → ${f(b)}` : `${name} ${f(b)}`);
  };
  fromTo("loss", seriesOf(entries, "loss"));
  fromTo("accuracy", seriesOf(entries, "rewards/accuracies"), true);
  fromTo("margin", seriesOf(entries, "rewards/margins"));
  const evAcc = seriesOf(entries, "eval_rewards/accuracies");
  const evLoss = seriesOf(entries, "eval_loss");
  if (evAcc.length || evLoss.length) {
    const s = (evAcc.length ? evAcc : evLoss)[(evAcc.length ? evAcc : evLoss).length - 1][0];
    const bits = [];
    const l = lastFinite(evLoss);
    const acc = lastFinite(evAcc);
    if (l !== undefined) bits.push(`loss ${shortNumber(l)}`);
    if (acc !== undefined) bits.push(`accuracy ${(acc * 100).toFixed(0)}%`);
    parts.push(`eval at step ${s}: ${bits.join(", ")}`);
  }
  return parts.join("  ·  ");
}

/** Options of `plotTraining`. */
export interface PlotTrainingOptions {
  /** Where to write (default `<dir>/training.svg`). */
  out?: string;
  /** The heading (default "DPO training — <folder name>"). */
  title?: string;
}

/**
 * Writes `<dir>/training.svg` from the run's logs in `dir` (see the module doc) and returns its path. Throws a
 * PlotError when the folder has no logs or they hold no step.
 */
export async function plotTraining(dir: string, opts: PlotTrainingOptions = {}): Promise<string> {
  const { entries, source } = await readTrainingLog(dir);
  if (entries.length === 0) throw new PlotError(`${source}: no log entries with a step to plot yet`);
  const d = dir.replace(/\/+$/, "");
  const name = d.split("/").filter(Boolean).pop() ?? d;
  const svg = trainingSvg(entries, {
    title: opts.title ?? `DPO training — ${name}`,
    note: `from ${source.split("/").slice(-2).join("/")}`,
  });
  const out = opts.out ?? `${d}/training.svg`;
  await files().writeText(out, svg);
  return out;
}
