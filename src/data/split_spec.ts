/**
 * Split specs as `datasets.load_dataset(split=...)` reads them (`datasets.ReadInstruction.from_spec`, the rules of
 * datasets ≥ 3.5: slices clamp like Python list slices since 2.17, `_` between digits since 3.5):
 *
 * - `train` — the whole split; `train+test` (spaces around `+` allowed) — splits one after the other;
 * - `train[10:20]`, `train[:100]`, `train[-5:]` — rows by number, negative from the end, clamped to the split
 *   (`train[:200]` of 100 rows is all 100, `train[-200:]` too);
 * - `train[:10%]`, `train[-5%:]`, `train[10%:20%]` — boundaries in percent (whole numbers, |b| ≤ 100). A `%` on
 *   either boundary makes both percentages, as datasets parses it (`train[10%:20]` is 10% to 20%);
 * - `train[:10%](pct1_dropremainder)` — the other rounding (below); `(closest)` names the default.
 *
 * A percent boundary b of a split of n rows becomes a row number by the rounding:
 * - closest (the default): b·n/100 rounded to the nearest integer, ties to the even one (Python's `round`, which
 *   datasets applies to the float b·n/100; exact integer arithmetic gives the same here, since b·n/100 is a tie
 *   exactly when b·n ends in 50). So 10% of 15 rows is 2 (1.5 → 2), of 25 is 2 (2.5 → 2), of 35 is 4; −5% of 10
 *   rows is 0 (−0.5 → 0), so `train[-5%:]` of 10 rows is all of them, and of 30 rows the last 2 (−1.5 → −2).
 * - pct1_dropremainder: b · ⌊n/100⌋, every 1% the same size (refused below 100 rows, as datasets does).
 *
 * Then, as Python slices: a negative row number counts from the end (n + from, at least 0), both are capped at n,
 * and from ≥ to selects nothing. A spec that selects no row at all is an error (datasets: "corresponds to no
 * data"); one empty part of a `+` is not. Parts after the first may not use another rounding than the first when
 * both are percent slices. Row numbers are ASCII digits (Python's `\d` would take other scripts' digits too).
 *
 * @module
 */
import { DatasetError } from "./tokenize_row.ts";

export type Rounding = "closest" | "pct1_dropremainder";

/** One part of a split spec (between `+`), as written. */
export interface SplitSlice {
  /** The split's name. */
  split: string;
  /** The lower boundary as written (null: from the start). */
  from: number | null;
  /** The upper boundary as written (null: to the end). */
  to: number | null;
  /** "abs": row numbers; "%": percentages of the split's rows. */
  unit: "abs" | "%";
  /** The percent rounding (null for row numbers). */
  rounding: Rounding | null;
  /** The part's text. */
  text: string;
}

const ALLOWED = "a split is NAME or NAME[from:to] with row numbers or whole percentages (train[:100], " +
  "train[10:20], train[-5:], train[:10%], train[10%:20%], train[-5%:]), optionally followed by (closest) or " +
  "(pct1_dropremainder) after a percent slice, and several are joined with + (train+test, train[:50%]+test)";

const SUB = new RegExp(
  String.raw`^(?<split>[\p{L}\p{N}_]+(?:\.[\p{L}\p{N}_]+)*)` +
    String.raw`(?:\[(?:(?<from>-?[0-9_]+)(?<fromPct>%)?)?:(?:(?<to>-?[0-9_]+)(?<toPct>%)?)?\])?` +
    String.raw`(?:\((?<rounding>[^)]*)\))?$`,
  "u",
);
/** Python's int() of `[\d_]+`: digits with single `_` between them. */
const INT = /^-?[0-9]+(?:_[0-9]+)*$/;

function fail(spec: string, problem: string): never {
  throw new DatasetError(`split "${spec}": ${problem}; ${ALLOWED}`);
}

function boundary(spec: string, part: string, s: string | undefined): number | null {
  if (s === undefined) return null;
  if (!INT.test(s)) fail(spec, `${s} in ${part} is not a whole number`);
  const v = Number(s.replaceAll("_", ""));
  return Object.is(v, -0) ? 0 : v;
}

/** The parts of split spec `spec`; a DatasetError naming the spec and what is allowed when it is not one. */
export function parseSplitSpec(spec: string): SplitSlice[] {
  const parts = spec.split(/\s*\+\s*/u);
  const out: SplitSlice[] = [];
  for (const text of parts) {
    const m = SUB.exec(text);
    if (!m) fail(spec, text === "" ? "an empty part" : `"${text}" is not a split or a slice of one`);
    const g = m.groups!;
    const unit = g.fromPct || g.toPct ? "%" : "abs";
    const from = boundary(spec, text, g.from);
    const to = boundary(spec, text, g.to);
    let rounding: Rounding | null = null;
    if (g.rounding !== undefined) {
      if (g.rounding !== "closest" && g.rounding !== "pct1_dropremainder") {
        fail(spec, `unknown rounding (${g.rounding}) in ${text}: it is closest or pct1_dropremainder`);
      }
      if (unit !== "%") fail(spec, `a rounding in ${text} applies only to a percent slice`);
      rounding = g.rounding;
    }
    if (unit === "%") {
      for (const b of [from, to]) {
        if (b !== null && Math.abs(b) > 100) fail(spec, `${b}% in ${text} is beyond ±100%`);
      }
      rounding ??= "closest";
    }
    const first = out[0];
    if (first && first.unit === "%" && unit === "%" && first.rounding !== rounding) {
      fail(
        spec,
        `${text} rounds ${rounding} but ${first.text} ${first.rounding}: parts may not mix roundings`,
      );
    }
    out.push({ split: g.split, from, to, unit, rounding, text });
  }
  return out;
}

/** Whether `part` selects every row of its split without looking at the row count (no slice at all). */
export function isWholeSplit(part: SplitSlice): boolean {
  return part.from === null && part.to === null;
}

/** Percent boundary `b` of `n` rows by datasets' default rounding: b·n/100 to the nearest integer, ties to even. */
export function percentClosest(b: number, n: number): number {
  const k = b * n;
  const r = ((k % 100) + 100) % 100;
  const q = (k - r) / 100;
  const v = r < 50 ? q : r > 50 ? q + 1 : q % 2 === 0 ? q : q + 1;
  return v === 0 ? 0 : v; // no -0
}

/** The rows [start, end) that `part` selects of its split's `n` rows (start ≥ end: none). */
export function sliceRows(part: SplitSlice, n: number, spec: string): { start: number; end: number } {
  let from = part.from, to = part.to;
  if (part.unit === "%") {
    if (part.rounding === "pct1_dropremainder") {
      if (n < 100) {
        throw new DatasetError(
          `split "${spec}": pct1_dropremainder rounding needs at least 100 rows, and ${part.split} has ${n} ` +
            `(every 1% would be empty); use the default rounding (closest)`,
        );
      }
      const pct1 = Math.trunc(n / 100);
      from = from === null ? null : from * pct1;
      to = to === null ? null : to * pct1;
    } else {
      from = from === null ? null : percentClosest(from, n);
      to = to === null ? null : percentClosest(to, n);
    }
  }
  let start = from ?? 0, end = to ?? n;
  if (start < 0) start = Math.max(n + start, 0);
  if (end < 0) end = Math.max(n + end, 0);
  return { start: Math.min(start, n), end: Math.min(end, n) };
}
