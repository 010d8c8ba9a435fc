/**
 * Small helpers for hand-written SVG: escaping, element strings, number formatting and "nice" axis ticks
 * (steps of 1, 2 or 5 × 10^k).
 *
 * @module
 */

/** Escapes text for SVG element content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A coordinate or length with at most two decimals (keeps the file small and free of float noise). */
export function px(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** An element string: `el("rect", {x: 1}, "")` → `<rect x="1"/>`; children are already-escaped SVG. */
export function el(
  name: string,
  attrs: Record<string, string | number | undefined>,
  children?: string,
): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === "number" ? px(v) : esc(v!)}"`)
    .join("");
  return children === undefined || children === "" ? `<${name}${a}/>` : `<${name}${a}>${children}</${name}>`;
}

/** A text element with escaped content. */
export function text(
  x: number,
  y: number,
  content: string,
  attrs: Record<string, string | number> = {},
): string {
  return el("text", { x, y, ...attrs }, esc(content));
}

/** Ticks covering [lo, hi]: about `count` values at a step of 1, 2 or 5 × 10^k, plus the step. */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; step: number } {
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(cleanFloat(i * step));
  return { ticks, step };
}

/** Rounds away float noise such as 0.30000000000000004. */
function cleanFloat(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(12));
}

/** A tick label: the decimals the tick step needs, or an exponent for very small or large magnitudes. */
export function tickLabel(v: number, step: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) {
    const digits = Math.floor(Math.log10(a)) - Math.floor(Math.log10(step) + 1e-9);
    return v.toExponential(Math.max(0, Math.min(4, digits)));
  }
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** A value for a legend or summary: 3 significant digits, exponent form when tiny or huge. */
export function shortNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(3)).toString();
}
