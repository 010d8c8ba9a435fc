/**
 * The entries of TRL's `datasets` list (`trl.scripts.utils.DatasetConfig`: `path`, `name`, `data_dir`,
 * `data_files`, `split`, `columns`), checked as plain data: what the config table's row and mixture.ts accept.
 *
 * @module
 */
import { nearestKey } from "../util/nearest.ts";

/** One entry of `datasets`, as the YAML writes it (snake_case). */
export interface DatasetMixtureEntry {
  readonly path: string;
  readonly name?: string | null;
  readonly data_dir?: string | null;
  readonly data_files?: unknown;
  readonly split?: string | null;
  readonly columns?: readonly string[] | null;
}

export const ENTRY_KEYS = ["path", "name", "data_dir", "data_files", "split", "columns"];
const NOT_SUPPORTED: Record<string, string> = {
  fraction: "per-dataset fractions (TRL ≥ 1.8) are not supported: every row of each entry is used; remove it",
};

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
      if (NOT_SUPPORTED[k]) return `${at}.${k}: ${NOT_SUPPORTED[k]}`;
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
    const cols = e.columns;
    if (
      cols !== undefined && cols !== null &&
      !(Array.isArray(cols) && cols.length > 0 && cols.every((c) => typeof c === "string" && c !== ""))
    ) {
      return `${at}.columns must be a non-empty list of column names`;
    }
  }
  return null;
}
