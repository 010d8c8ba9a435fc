/**
 * One line-chart panel as an SVG group: a title, a legend, a plot area with grid lines, x and y axes with ticks
 * and labels, reference lines, and the series as polylines (a non-finite value breaks the line) with optional
 * point markers. The panel and each series carry `class`/`data-*` attributes so tests and scripts can find them.
 *
 * @module
 */
import { el, niceTicks, px, text, tickLabel } from "./svg.ts";

/** One line of a panel. */
export interface Series {
  /** Stable id (`data-series`), e.g. "train" or "eval". */
  id: string;
  /** Legend text. */
  label: string;
  /** Stroke colour. */
  color: string;
  /** stroke-dasharray, for a dashed line. */
  dash?: string;
  /** [x, y] points in x order; a non-finite y breaks the line there. */
  points: [number, number][];
  /** Draw a marker at every point (default: when the series has at most 40 points). */
  markers?: boolean;
  /**
   * Over an exponential moving average of the points (weight 0–1, debiased as TensorBoard does), drawn solid
   * over the raw line, which is then drawn faint. Non-finite points break both lines.
   */
  smoothing?: number;
}

/** The debiased exponential moving average of `points` (non-finite values are passed through and skipped). */
export function smoothed(points: [number, number][], weight: number): [number, number][] {
  let acc = 0;
  let norm = 0;
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y];
    acc = acc * weight + (1 - weight) * y;
    norm = norm * weight + (1 - weight);
    return [x, acc / norm];
  });
}

/** A horizontal guide line (zero, chance level, ...). */
export interface RefLine {
  y: number;
  label: string;
}

/** What one panel shows. */
export interface PanelSpec {
  /** Panel heading. */
  title: string;
  /** The metric (`data-metric`). */
  metric: string;
  /** y-axis label. */
  yLabel: string;
  /** x-axis label. */
  xLabel: string;
  /** Shared x range (all panels of a figure use the same steps). */
  xDomain: [number, number];
  /** A fixed y range (e.g. [0, 1] for accuracies); default from the data. */
  yDomain?: [number, number];
  series: Series[];
  refLines?: RefLine[];
  /** What an empty panel says (default "no <metric> in the logs"). */
  emptyText?: string;
}

/** The rectangle a panel occupies. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
/** Approximate advance of one character of the 12 px legend font. */
const CHAR_W = 7.2;

let clipCounter = 0;

/** The y range a panel shows: the data (and guides) rounded out to nice ticks, with a small margin. */
function yRange(spec: PanelSpec): { lo: number; hi: number; ticks: number[]; step: number } {
  if (spec.yDomain) {
    const [a, b] = spec.yDomain;
    const { ticks, step } = niceTicks(a, b, 5);
    const pad = (b - a) * 0.04;
    return { lo: a - pad, hi: b + pad, ticks, step };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of spec.series) {
    for (const [, y] of s.points) {
      if (!Number.isFinite(y)) continue;
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
  }
  for (const r of spec.refLines ?? []) {
    // a guide joins the range only when the data comes near it, so it never flattens the curves
    if (Number.isFinite(lo) && r.y >= lo - (hi - lo) * 0.25 && r.y <= hi + (hi - lo) * 0.25) {
      lo = Math.min(lo, r.y);
      hi = Math.max(hi, r.y);
    }
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(lo))) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  // round the range out to whole ticks so the grid spans the plot
  const { step } = niceTicks(lo, hi, 5);
  const a = cleanTick(Math.floor(lo / step + 1e-9) * step);
  const b = cleanTick(Math.ceil(hi / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let i = 0; a + i * step <= b + step * 1e-9; i++) ticks.push(cleanTick(a + i * step));
  const pad = (b - a) * 0.03;
  return { lo: a - pad, hi: b + pad, ticks, step };
}

function cleanTick(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(12));
}

const SWATCH = 20;
const LEGEND_FONT = 12;
const LEGEND_ROW = 18;
const LEGEND_GAP = 18;

/** Legend items placed left to right under the title, wrapping to further rows when the panel is too narrow. */
function legendLayout(spec: PanelSpec, box: Box): { s: Series; x: number; y: number }[] {
  const out: { s: Series; x: number; y: number }[] = [];
  const left = box.x + 14;
  const right = box.x + box.w - 14;
  let x = left;
  let row = 0;
  for (const s of spec.series) {
    if (!s.points.some(([, y]) => Number.isFinite(y))) continue;
    const w = SWATCH + 6 + s.label.length * CHAR_W;
    if (x > left && x + w > right) {
      row++;
      x = left;
    }
    out.push({ s, x, y: box.y + 40 + row * LEGEND_ROW });
    x += w + LEGEND_GAP;
  }
  return out;
}

/** How many legend rows a panel needs in `box` (panels side by side pass the larger count to `panel`). */
export function legendRows(spec: PanelSpec, box: Box): number {
  const items = legendLayout(spec, box);
  return items.length === 0 ? 1 : 1 + Math.round((items[items.length - 1].y - (box.y + 40)) / LEGEND_ROW);
}

/** The SVG `<g>` of one panel inside `box`. */
export function panel(spec: PanelSpec, box: Box, rows = legendRows(spec, box)): string {
  const clipId = `clip-${++clipCounter}`;
  const top = 34 + rows * LEGEND_ROW;
  const plot = { x: box.x + 62, y: box.y + top, w: box.w - 62 - 14, h: box.h - top - 44 };
  const [x0, x1raw] = spec.xDomain;
  const x1 = x1raw > x0 ? x1raw : x0 + 1;
  const yr = yRange(spec);
  const sx = (x: number) => plot.x + ((x - x0) / (x1 - x0)) * plot.w;
  const sy = (y: number) => plot.y + plot.h - ((y - yr.lo) / (yr.hi - yr.lo)) * plot.h;
  const parts: string[] = [];

  // frame, grid and ticks
  parts.push(
    el("rect", { x: plot.x, y: plot.y, width: plot.w, height: plot.h, fill: "#fcfcfd", stroke: "none" }),
  );
  const yTicks: string[] = [];
  for (const t of yr.ticks) {
    const y = sy(t);
    yTicks.push(el("line", { x1: plot.x, x2: plot.x + plot.w, y1: y, y2: y, stroke: "#e6e8eb" }));
    yTicks.push(el("line", { x1: plot.x - 5, x2: plot.x, y1: y, y2: y, stroke: "#666" }));
    yTicks.push(text(plot.x - 8, y + 4, tickLabel(t, yr.step), { "text-anchor": "end", class: "tick" }));
  }
  parts.push(el("g", { class: "y-axis", "font-size": 11, fill: "#444" }, yTicks.join("")));
  // steps are whole numbers: no ticks between them
  let xt = niceTicks(x0, x1, Math.max(3, Math.round(plot.w / 80)));
  if (xt.step < 1) xt = { ticks: xt.ticks.filter(Number.isInteger), step: 1 };
  const xTicks: string[] = [];
  for (const t of xt.ticks) {
    if (t < x0 || t > x1) continue;
    const x = sx(t);
    xTicks.push(el("line", { x1: x, x2: x, y1: plot.y, y2: plot.y + plot.h, stroke: "#f0f1f3" }));
    xTicks.push(el("line", { x1: x, x2: x, y1: plot.y + plot.h, y2: plot.y + plot.h + 5, stroke: "#666" }));
    xTicks.push(
      text(x, plot.y + plot.h + 18, tickLabel(t, xt.step), { "text-anchor": "middle", class: "tick" }),
    );
  }
  parts.push(el("g", { class: "x-axis", "font-size": 11, fill: "#444" }, xTicks.join("")));
  parts.push(
    el("path", {
      d: `M${px(plot.x)},${px(plot.y)}V${px(plot.y + plot.h)}H${px(plot.x + plot.w)}`,
      fill: "none",
      stroke: "#555",
    }),
  );
  parts.push(
    text(plot.x + plot.w / 2, plot.y + plot.h + 36, spec.xLabel, {
      "text-anchor": "middle",
      "font-size": 12,
      fill: "#333",
      class: "axis-label",
    }),
  );
  const ly = plot.y + plot.h / 2;
  parts.push(
    text(box.x + 14, ly, spec.yLabel, {
      "text-anchor": "middle",
      "font-size": 12,
      fill: "#333",
      transform: `rotate(-90 ${px(box.x + 14)} ${px(ly)})`,
      class: "axis-label",
    }),
  );

  // guides
  for (const r of spec.refLines ?? []) {
    if (r.y < yr.lo || r.y > yr.hi) continue;
    const y = sy(r.y);
    parts.push(
      el(
        "g",
        { class: "ref-line" },
        [
          el("line", {
            x1: plot.x,
            x2: plot.x + plot.w,
            y1: y,
            y2: y,
            stroke: "#9aa0a6",
            "stroke-dasharray": "2 4",
          }),
          text(plot.x + plot.w - 4, y - 4, r.label, {
            "text-anchor": "end",
            "font-size": 10,
            fill: "#80868b",
          }),
        ].join(""),
      ),
    );
  }

  // series
  const hasData = spec.series.some((s) => s.points.some(([, y]) => Number.isFinite(y)));
  const lines: string[] = [];
  const pathOf = (points: [number, number][]) => {
    let d = "";
    let pen = false;
    for (const [x, y] of points) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${px(sx(x))},${px(sy(y))}`;
      pen = true;
    }
    return d;
  };
  for (const s of spec.series) {
    const finite = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (finite.length === 0) continue;
    const smooth = s.smoothing !== undefined && s.smoothing > 0;
    const stroke = { fill: "none", stroke: s.color, "stroke-linejoin": "round", "stroke-linecap": "round" };
    const items = [
      el("path", {
        d: pathOf(s.points),
        ...stroke,
        "stroke-width": smooth ? 1.2 : 2,
        "stroke-opacity": smooth ? 0.3 : undefined,
        "stroke-dasharray": s.dash,
      }),
    ];
    if (smooth) {
      items.push(
        el("path", {
          d: pathOf(smoothed(s.points, s.smoothing!)),
          ...stroke,
          "stroke-width": 2.2,
          "stroke-dasharray": s.dash,
          class: "smoothed",
        }),
      );
    }
    if (s.markers ?? s.points.length <= 40) {
      for (const [x, y] of finite) {
        items.push(
          el("circle", { cx: sx(x), cy: sy(y), r: 2.8, fill: s.color, stroke: "#fff", "stroke-width": 1 }),
        );
      }
    }
    lines.push(
      el("g", { class: "series", "data-series": s.id, "data-points": finite.length }, items.join("")),
    );
  }
  parts.push(
    el(
      "clipPath",
      { id: clipId },
      el("rect", { x: plot.x - 6, y: plot.y - 6, width: plot.w + 12, height: plot.h + 12 }),
    ),
  );
  parts.push(el("g", { "clip-path": `url(#${clipId})` }, lines.join("")));
  if (!hasData) {
    parts.push(
      text(plot.x + plot.w / 2, plot.y + plot.h / 2, spec.emptyText ?? `no ${spec.metric} in the logs`, {
        "text-anchor": "middle",
        "font-size": 13,
        fill: "#999",
        class: "no-data",
      }),
    );
  }

  // title, and the legend rows under it
  parts.push(
    text(box.x + 14, box.y + 18, spec.title, { "font-size": 15, "font-weight": "bold", fill: "#202124" }),
  );
  const legend: string[] = [];
  for (const item of legendLayout(spec, box)) {
    const { s, x, y } = item;
    legend.push(
      el("line", {
        x1: x,
        x2: x + SWATCH,
        y1: y - 4,
        y2: y - 4,
        stroke: s.color,
        "stroke-width": 2.5,
        "stroke-dasharray": s.dash,
      }),
    );
    if (s.markers) {
      legend.push(el("circle", { cx: x + SWATCH / 2, cy: y - 4, r: 3.2, fill: s.color }));
    }
    legend.push(
      text(x + SWATCH + 6, y, s.label, { "font-size": LEGEND_FONT, fill: "#333", class: "legend-label" }),
    );
  }
  parts.push(el("g", { class: "legend" }, legend.join("")));
  return el("g", { class: "panel", "data-metric": spec.metric, "font-family": FONT }, parts.join(""));
}
