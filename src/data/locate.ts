/**
 * Where a dataset's rows are: `loadDataset`'s first argument and options (`datasets.load_dataset`'s `path`,
 * `name`, `data_dir` and `data_files`) turned into the dataset's splits and each split's data files, in reading
 * order (`openDataset`).
 *
 * - A file is itself, the one split train.
 * - A hub id that is no local path (`Anthropic/hh-rlhf`) is its snapshot in the Hugging Face cache (hub_cache.ts).
 * - A folder is a `datasets.save_to_disk` folder (save_to_disk.ts), or a dataset folder as the hub publishes
 *   them: `data_files` patterns when given; else the files under `data_dir` when given; else the subset
 *   (`name`, TRL's `dataset_config`) that README.md's `configs` declare, or the default one; else, without a
 *   card, the folder named `name`. The splits and their files are then found by `datasets`' rules
 *   (data_files.ts): the patterns' splits, else those the files' names infer.
 *
 * @module
 */
import { dataFormat, filesOf, inferSplits, type SplitPatterns, splitPatternsOf } from "./data_files.ts";
import { pickConfig, readCardConfigs } from "./dataset_card.ts";
import { hasMagic } from "./glob.ts";
import { type HubCacheOptions, isHubId, resolveCachedDataset } from "./hub_cache.ts";
import { listFilesUnder } from "./list_files.ts";
import { saveToDiskSplits } from "./save_to_disk.ts";
import { DatasetError } from "./tokenize_row.ts";
import * as io from "../io/platform.ts";
import type { FileStat } from "../io/types.ts";

/** Which dataset: `datasets.load_dataset`'s arguments besides the path and the split. */
export interface DataFilesOptions extends HubCacheOptions {
  /** The subset (TRL's `dataset_config`, load_dataset's `name`): a config of README.md, or a folder. */
  name?: string | null;
  /** A folder inside the dataset whose files are read (load_dataset's `data_dir`, e.g. `harmless-base`). */
  dataDir?: string | null;
  /** Patterns of the data files (load_dataset's `data_files`): a pattern or list (train), or by split. */
  dataFiles?: unknown;
}

/** A dataset's splits, and where each one's rows are. */
export interface DatasetLayout {
  /** Whether the path is a single file (whose one split is train). */
  single: boolean;
  /** The splits, in the order `datasets` lists them. */
  splits: string[];
  /** What to call split `split` (or a slice of it, like `train[:10%]`): "folder [subset/split]", or the file. */
  label(split: string): string;
  /** The data files of split `split`, in reading order; a DatasetError naming the splits there are otherwise. */
  files(split: string): Promise<string[]>;
}

async function statOrNull(path: string): Promise<FileStat | null> {
  try {
    return await io.files().stat(path);
  } catch {
    return null;
  }
}

/** A single data file: the train split. */
function fileLayout(path: string): DatasetLayout {
  return {
    single: true,
    splits: ["train"],
    label: (split) => split === "train" ? path : `${path} [${split}]`,
    files(split) {
      if (split === "train") return Promise.resolve([path]);
      return Promise.reject(
        new DatasetError(
          `${path} is a single file, which is the train split only (asked for split "${split}"): point the ` +
            `dataset at a folder holding ${split} files, or take a slice of train (e.g. train[90%:])`,
        ),
      );
    },
  };
}

/** The splits of the dataset at `pathOrId` and their files (see the module comment). */
export async function openDataset(pathOrId: string, opts: DataFilesOptions = {}): Promise<DatasetLayout> {
  const name = opts.name ?? null;
  const dataDir = opts.dataDir ?? null;
  const dataFiles = opts.dataFiles ?? null;
  let root: string;
  const info = await statOrNull(pathOrId);
  if (info === null) {
    if (!isHubId(pathOrId)) {
      throw new DatasetError(
        `${pathOrId}: no such file or folder (give a .json/.jsonl/.parquet file, a datasets folder, a ` +
          `save_to_disk folder, or the id of a hub dataset in the Hugging Face cache, like org/name)`,
      );
    }
    root = await resolveCachedDataset(pathOrId, opts);
  } else if (!info.isDirectory) {
    const given = [
      name !== null && "dataset_config",
      dataDir !== null && "data_dir",
      dataFiles !== null && "data_files",
    ]
      .filter(Boolean);
    if (given.length > 0) {
      throw new DatasetError(
        `${pathOrId} is a single file, so ${
          given.join(" and ")
        } cannot apply: point the dataset at its folder`,
      );
    }
    return fileLayout(pathOrId);
  } else {
    root = pathOrId.replace(/(.)\/+$/, "$1");
  }
  if (dataDir !== null && (dataDir.startsWith("/") || dataDir.split("/").includes(".."))) {
    throw new DatasetError(
      `data_dir ${dataDir} must be a folder inside ${root} (a relative path without ..)`,
    );
  }
  const dir = dataDir !== null ? `${root}/${dataDir.replace(/^\.\/|\/+$/g, "")}` : root;
  if (name === null && dataFiles === null) {
    const saved = await saveToDiskSplits(dir);
    if (saved !== null) {
      return {
        single: false,
        splits: saved.splits,
        label: (split) => `${dir} [${split}]`,
        files: saved.files,
      };
    }
  }
  const { base, patterns, subset } = await choosePatterns(root, dir, name, dataDir, dataFiles);
  if ((await statOrNull(base))?.isDirectory !== true) {
    throw new DatasetError(`${base}: no such folder${dataDir !== null ? " (data_dir)" : ""}`);
  }
  const files = await listFilesUnder(base);
  const splits = patterns ?? inferSplits(files);
  return {
    single: false,
    splits: [...splits.keys()],
    label: (split) => `${base} [${subset ? `${subset}/` : ""}${split}]`,
    async files(split) {
      const wanted = splits.get(split);
      if (wanted === undefined) {
        throw new DatasetError(
          `${base}: no files for split "${split}" (its splits: ${[...splits.keys()].join(", ") || "none"}; ` +
            `looked for data/${split}-*.parquet, ${split}/*, ${split}.jsonl and similar, as datasets does)`,
        );
      }
      return await filesOfSplit(base, wanted, files, split);
    },
  };
}

/** The folder the split patterns are relative to, the patterns (null: inferred from the files), and the subset. */
async function choosePatterns(
  root: string,
  dir: string,
  name: string | null,
  dataDir: string | null,
  dataFiles: unknown,
): Promise<{ base: string; patterns: SplitPatterns | null; subset: string | null }> {
  if (dataFiles !== null) {
    const got = splitPatternsOf(dataFiles);
    if (!(got instanceof Map)) throw new DatasetError(`data_files must be ${got.problem}`);
    return { base: dir, patterns: got, subset: name };
  }
  if (dataDir !== null) return { base: dir, patterns: null, subset: name };
  const configs = await readCardConfigs(root);
  if (configs !== null && configs.length > 0) {
    const c = pickConfig(configs, name, `${root}/README.md`);
    return {
      base: c.dataDir ? `${root}/${c.dataDir}` : root,
      patterns: c.dataFiles,
      subset: c.name === "default" ? null : c.name,
    };
  }
  if (name === null || name === "default") return { base: root, patterns: null, subset: null };
  if ((await statOrNull(`${root}/${name}`))?.isDirectory && !name.split("/").includes("..")) {
    return { base: `${root}/${name}`, patterns: null, subset: null };
  }
  const folders: string[] = [];
  try {
    for (const e of await io.files().list(root)) {
      if ((e.isDirectory || e.isSymlink) && !e.name.startsWith(".")) folders.push(e.name);
    }
  } catch { /* listed as none */ }
  throw new DatasetError(
    `${root} has no subset "${name}" (dataset_config): no README.md declares configs, and there is no folder ` +
      `${name}/ (folders: ${folders.sort().join(", ") || "none"})`,
  );
}

/** The files of one split's patterns, as paths under `base`, keeping the formats webdpo reads (see below). */
async function filesOfSplit(
  base: string,
  patterns: string[],
  files: string[],
  split: string,
): Promise<string[]> {
  const out: string[] = [];
  for (const p of patterns) {
    if (p.startsWith("/") || !hasMagic(p)) {
      // a path (relative or absolute) names one file, which must exist
      const path = p.startsWith("/") ? p : `${base}/${p.replace(/^\.\//, "")}`;
      if ((await statOrNull(path))?.isFile !== true) {
        throw new DatasetError(`${path}: no such file (named by data_files for split "${split}")`);
      }
      out.push(path);
      continue;
    }
    for (const f of filesOf([p], files)) out.push(`${base}/${f}`);
  }
  const unique = [...new Set(out)];
  const data = unique.filter((f) => dataFormat(f) !== null);
  if (data.length === 0) {
    const found = unique.map((f) => f.slice(base.length + 1)).slice(0, 5).join(", ");
    throw new DatasetError(
      `${base}: split "${split}" has no file webdpo reads (.parquet, .json, .jsonl, .json.gz, .jsonl.gz or ` +
        `.arrow)${found ? `; found ${found}` : ""}`,
    );
  }
  // as datasets does, one format per split: the most common (a stray .json beside Parquet shards is not data)
  const counts = new Map<string, number>();
  for (const f of data) counts.set(dataFormat(f)!, (counts.get(dataFormat(f)!) ?? 0) + 1);
  const format = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  return data.filter((f) => dataFormat(f) === format);
}
