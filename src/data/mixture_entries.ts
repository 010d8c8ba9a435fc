/**
 * The entries of TRL's `datasets` list (`trl.scripts.utils.DatasetConfig`: `path`, `name`, `data_dir`,
 * `data_files`, `split`, `columns`, and from TRL 1.8 `fraction`), checked as plain data: what the config table's
 * row and mixture.ts accept. A `split` is a split spec as load_dataset takes it (split_spec.ts: `train[:10%]`).
 *
 * @module
 */
import { nearestKey } from "../util/nearest.ts";
import { parseSplitSpec } from "./split_spec.ts";

/** One entry of `datasets`, as the YAML writes it (snake_case). */
export interface DatasetMixtureEntry {
  readonly path: string;
  readonly name?: string | null;
  readonly data_dir?: string | null;
  readonly data_files?: unknown;
  readonly split?: string | null;
  readonly columns?: readonly string[] | null;
  /** The entry's target share of the mixture (TRL ≥ 1.8): given for every entry or none; see mixture.ts. */
  readonly fraction?: number | null;
}

export const ENTRY_KEYS = ["path", "name", "data_dir", "data_files", "split", "columns", "fraction"];

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** What is wrong with a `datasets` value (a list of entries), or null when nothing is. */
export function mixtureProblem(v: unknown): string | null {
  if (!Array.isArray(v) || v.length === 0) {
    return "must be a non-empty list of {path, name, data_dir, ...} entries";
  }
  for (const [i, e] of v.entries()) {
    const at = `[${i}]`;
    if (!isObject(e)) return `${at} must be a mapping with at least a path`;
    for (const k of Object.keys(e)) {
      if (ENTRY_KEYS.includes(k)) continue;
      const near = nearestKey(k, ENTRY_KEYS);
      return `${at} has an unknown key '${k}'${near ? `; did you mean '${near}'?` : ""} ` +
        `(an entry has ${ENTRY_KEYS.join(", ")})`;
    }
    if (typeof e.path !== "string" || e.path === "") {
      return `${at}.path must be a dataset file, folder or hub id`;
    }
    for (const k of ["name", "data_dir", "split"]) {
      if (e[k] !== undefined && e[k] !== null && (typeof e[k] !== "string" || e[k] === "")) {
        return `${at}.${k} must be a non-empty string`;
      }
    }
    if (typeof e.split === "string") {
      try {
        parseSplitSpec(e.split);
      } catch (err) {
        return `${at}.split: ${err instanceof Error ? err.message : err}`;
      }
    }
    const f = e.fraction;
    if (f !== undefined && f !== null && !(typeof f === "number" && Number.isFinite(f) && f >= 0)) {
      return `${at}.fraction must be a share ≥ 0 (the entry's part of the mixture, normalized over the entries)`;
    }
    const cols = e.columns;
    if (
      cols !== undefined && cols !== null &&
      !(Array.isArray(cols) && cols.length > 0 && cols.every((c) => typeof c === "string" && c !== ""))
    ) {
      return `${at}.columns must be a non-empty list of column names`;
    }
  }
  const given = v.map((e) => e.fraction !== undefined && e.fraction !== null);
  if (given.includes(true) && given.includes(false)) {
    return `must give fraction for every entry or for none (given for ${
      given.flatMap((g, i) => g ? [`[${i}]`] : []).join(", ")
    } only)`;
  }
  if (given.includes(true) && v.every((e) => e.fraction === 0)) {
    return "have fractions that are all 0: the mixture would have no rows";
  }
  return null;
}
