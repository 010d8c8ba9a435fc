/**
 * Which files of a dataset folder hold which split, by the conventions of Hugging Face `datasets` (4.x,
 * `datasets.data_files`), so that a folder or a hub snapshot gives webdpo the rows `load_dataset` gives:
 *
 * 1. sharded files `data/<split>-00000-of-00001.parquet` name their split (any split name);
 * 2. else a folder named for a split anywhere in the path (`train/`, `train-2024/`, `x-test/`) puts its files there;
 * 3. else a file name starting with a split's keyword followed by `-._ ` or a digit (`train.jsonl.gz`,
 *    `test-00000.parquet`), or holding it between such characters (`hh-train.jsonl`);
 * 4. else every file is the train split.
 *
 * The keywords: train (train, training), validation (validation, valid, dev, val), test (test, testing, eval,
 * evaluation). Hidden files and folders (`.x`), `__x` folders, README.md and datasets' own metadata files
 * (dataset_info.json, dataset_infos.json, dataset_dict.json, config.json) are not data. Patterns a user or a
 * dataset card gives (`data_files`) are globs (glob.ts) relative to the folder.
 *
 * @module
 */
import { globToRegExp } from "./glob.ts";

/** A split's patterns, in order (files of the first pattern first, each pattern's files sorted). */
export type SplitPatterns = Map<string, string[]>;

/** The data files `data_files` may name, by format: webdpo reads these. */
const FORMATS: readonly [string, readonly string[]][] = [
  ["parquet", [".parquet"]],
  ["json", [".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz"]],
  ["arrow", [".arrow"]],
];

/** The format of a data file webdpo reads ("parquet", "json", "arrow"), or null. */
export function dataFormat(path: string): string | null {
  const lower = path.toLowerCase();
  for (const [name, exts] of FORMATS) if (exts.some((e) => lower.endsWith(e))) return name;
  return null;
}

const IGNORED_FILES = new Set([
  "README.md",
  "config.json",
  "dataset_info.json",
  "dataset_infos.json",
  "dummy_data.zip",
  "dataset_dict.json",
]);

const SPLIT_KEYWORDS: readonly [string, readonly string[]][] = [
  ["train", ["train", "training"]],
  ["validation", ["validation", "valid", "dev", "val"]],
  ["test", ["test", "testing", "eval", "evaluation"]],
];
const SEP = "[-._ 0-9]";

const byKeyword = (bases: readonly string[]): SplitPatterns =>
  new Map(SPLIT_KEYWORDS.map(([split, words]) => [
    split,
    words.flatMap((w) => bases.map((b) => b.replaceAll("{k}", w).replaceAll("{s}", SEP))),
  ]));

/** Rule 2: a split keyword as a folder name (or a folder name's word). */
const IN_FOLDER_NAME = byKeyword(["**/{k}/**", "**/{k}{s}*/**", "**/*{s}{k}/**", "**/*{s}{k}{s}*/**"]);
/** Rule 3: a split keyword at the start of a file name, or between separators in it. */
const IN_FILE_NAME = byKeyword(["**/{k}{s}*", "**/*{s}{k}{s}*"]);

/** Rule 1: `data/<split>-NNNNN-of-NNNNN…`, the split a word or dotted words. */
const SHARDED = /^data\/(\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*\.[^/]*$/;

const hiddenParts = (path: string) =>
  path.split("/").filter((p) => p.startsWith(".") && !/^\.+$/.test(p)).length;
const specialDirs = (path: string) => path.split("/").slice(0, -1).filter((p) => p.startsWith("__")).length;

/**
 * Whether `pattern` selects `path`: it matches, and the path has no hidden part or `__` folder the pattern does
 * not name (datasets' rule: `**` does not reach into `.git/` or `__pycache__/`, `.hidden/*` does).
 */
function selects(pattern: string, re: RegExp, path: string): boolean {
  if (!re.test(path)) return false;
  if (IGNORED_FILES.has(path.split("/").pop()!) && path.split("/").pop() !== pattern.split("/").pop()) {
    return false;
  }
  return hiddenParts(path) === hiddenParts(pattern) && specialDirs(path) === specialDirs(pattern);
}

/** The files (of `files`, relative paths) each pattern selects, in pattern order, each pattern's sorted. */
export function filesOf(patterns: readonly string[], files: readonly string[]): string[] {
  const out: string[] = [];
  const taken = new Set<string>();
  for (const p of patterns) {
    const re = globToRegExp(p);
    for (const f of files) {
      if (!taken.has(f) && selects(p, re, f)) {
        taken.add(f);
        out.push(f);
      }
    }
  }
  return out;
}

/** The splits of a folder holding `files` (relative paths, sorted), with each split's patterns (rules 1–4). */
export function inferSplits(files: readonly string[]): SplitPatterns {
  const sharded = new Set<string>();
  for (const f of files) {
    const m = SHARDED.exec(f);
    if (m) sharded.add(m[1]);
  }
  if (sharded.size > 0) {
    const known = SPLIT_KEYWORDS.map(([s]) => s).filter((s) => sharded.has(s));
    const rest = [...sharded].filter((s) => !known.includes(s)).sort();
    return new Map(
      [...known, ...rest].map((
        s,
      ) => [s, [`data/${s}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*`]]),
    );
  }
  for (const rule of [IN_FOLDER_NAME, IN_FILE_NAME]) {
    const found = new Map([...rule].filter(([, patterns]) => filesOf(patterns, files).length > 0));
    if (found.size > 0) return found;
  }
  return new Map([["train", ["**"]]]);
}

/**
 * `data_files` as `datasets` accepts it, by split: a pattern or a list of them (the train split), a mapping of
 * split to pattern(s), or a list of `{split, path}`; for anything else, `{problem}` says what is allowed.
 */
export function splitPatternsOf(dataFiles: unknown): SplitPatterns | { problem: string } {
  const patterns = (v: unknown): string[] | null =>
    typeof v === "string" && v !== ""
      ? [v]
      : Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && x !== "")
      ? v as string[]
      : null;
  const one = patterns(dataFiles);
  if (one) return new Map([["train", one]]);
  const problem = {
    problem: "a pattern, a list of patterns, a mapping of split to pattern(s), or a list of {split, path}",
  };
  if (Array.isArray(dataFiles)) {
    const out: SplitPatterns = new Map();
    for (const item of dataFiles) {
      const split = (item as { split?: unknown })?.split;
      const ps = patterns((item as { path?: unknown })?.path);
      if (typeof split !== "string" || split === "" || ps === null || out.has(split)) return problem;
      out.set(split, ps);
    }
    return out.size > 0 ? out : problem;
  }
  if (dataFiles !== null && typeof dataFiles === "object") {
    const out: SplitPatterns = new Map();
    for (const [split, v] of Object.entries(dataFiles)) {
      const ps = patterns(v);
      if (ps === null) return problem;
      out.set(split, ps);
    }
    return out.size > 0 ? out : problem;
  }
  return problem;
}
