/**
 * The subsets a hub dataset declares in its card: the `configs` list of README.md's YAML front matter, as
 * `datasets` reads it. Each config has a `config_name`, and `data_files` (a pattern, a list of them, or a list of
 * `{split, path}`) and/or a `data_dir`; one may be marked `default: true`.
 *
 * ```yaml
 * ---
 * configs:
 * - config_name: default
 *   data_files:
 *   - split: train_prefs
 *     path: data/train_prefs-*
 * ---
 * ```
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { files } from "../io/platform.ts";
import { isNotFound } from "../io/types.ts";
import { type SplitPatterns, splitPatternsOf } from "./data_files.ts";
import { DatasetError } from "./tokenize_row.ts";

/** One subset of a dataset card. */
export interface CardConfig {
  name: string;
  /** The subset's folder inside the dataset (its patterns are relative to it); "" for the root. */
  dataDir: string;
  /** The subset's files by split; null: inferred from the files under `dataDir`. */
  dataFiles: SplitPatterns | null;
  /** Marked `default: true`. */
  isDefault: boolean;
}

/** The YAML front matter of a README.md, or null when it has none. */
function frontMatter(text: string): string | null {
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(\r?\n|$)/.exec(text.replace(/^\uFEFF/, ""));
  return m ? m[1] : null;
}

/** The configs README.md in `root` declares, or null (no README.md, no front matter, no `configs`). */
export async function readCardConfigs(root: string): Promise<CardConfig[] | null> {
  const path = `${root}/README.md`;
  let text: string;
  try {
    text = await files().readText(path);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw new DatasetError(`${path}: cannot read the dataset card (${e instanceof Error ? e.message : e})`);
  }
  const yaml = frontMatter(text);
  if (yaml === null) return null;
  let meta: unknown;
  try {
    meta = parseYaml(yaml, { logLevel: "error" });
  } catch (e) {
    throw new DatasetError(`${path}: the YAML front matter is not valid YAML (${(e as Error).message})`);
  }
  const configs = (meta as { configs?: unknown } | null)?.configs;
  if (configs === undefined || configs === null) return null;
  if (!Array.isArray(configs)) throw new DatasetError(`${path}: "configs" must be a list of subsets`);
  return configs.map((c, i) => cardConfig(c, `${path}: configs[${i}]`));
}

function cardConfig(c: unknown, where: string): CardConfig {
  if (c === null || typeof c !== "object" || Array.isArray(c)) {
    throw new DatasetError(`${where} must be a mapping`);
  }
  const o = c as Record<string, unknown>;
  if (typeof o.config_name !== "string" || o.config_name === "") {
    throw new DatasetError(`${where}: "config_name" must be a non-empty string`);
  }
  const name = o.config_name;
  if (o.data_dir !== undefined && o.data_dir !== null && typeof o.data_dir !== "string") {
    throw new DatasetError(`${where} (${name}): "data_dir" must be a folder name`);
  }
  let dataFiles: SplitPatterns | null = null;
  if (o.data_files !== undefined && o.data_files !== null) {
    const got = splitPatternsOf(o.data_files);
    if (!(got instanceof Map)) {
      throw new DatasetError(`${where} (${name}): "data_files" must be ${got.problem}`);
    }
    dataFiles = got;
  }
  const dataDir = typeof o.data_dir === "string" ? o.data_dir.replace(/^\.?\/+|\/+$/g, "") : "";
  return { name, dataDir, dataFiles, isDefault: o.default === true };
}

/**
 * The config `name` asks for, or, without a name, the default one as `datasets` picks it: the only config, the
 * one named "default", or the one marked `default: true` (more than one of these is an error in the card).
 */
export function pickConfig(configs: readonly CardConfig[], name: string | null, card: string): CardConfig {
  const names = configs.map((c) => c.name);
  if (name !== null) {
    const c = configs.find((x) => x.name === name);
    if (c) return c;
    throw new DatasetError(
      `${card} has no subset "${name}" (dataset_config); its subsets: ${names.join(", ")}`,
    );
  }
  const defaults = configs.filter((c) => configs.length === 1 || c.name === "default" || c.isDefault);
  if (defaults.length > 1) {
    throw new DatasetError(
      `${card} marks several subsets as the default: ${defaults.map((c) => c.name).join(", ")}`,
    );
  }
  if (defaults.length === 1) return defaults[0];
  throw new DatasetError(
    `${card} declares ${configs.length} subsets and none is the default: pick one with dataset_config ` +
      `(${names.join(", ")})`,
  );
}
