/**
 * The splits and Arrow files of a `datasets.save_to_disk` folder: a DatasetDict folder (`dataset_dict.json` lists
 * the splits, each a folder of its own) or one split's folder (`state.json` lists its `data-*.arrow` files, Arrow
 * IPC streams that file_rows.ts reads record batch by record batch).
 *
 * @module
 */
import * as io from "../io/platform.ts";
import { isNotFound } from "../io/types.ts";
import { isPlainFileName } from "../util/fs.ts";
import { DatasetError } from "./tokenize_row.ts";

async function readJson(f: string): Promise<unknown> {
  try {
    return JSON.parse(await io.files().readText(f));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw new DatasetError(`${f}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
}

/** A save_to_disk folder's splits, and the Arrow files of each. */
export interface SavedSplits {
  /** The splits: dataset_dict.json's, or "train" for one split's folder. */
  splits: string[];
  /** The Arrow files of `split`; a DatasetError naming the splits when there is no such split. */
  files(split: string): Promise<string[]>;
}

/** The Arrow files state.json lists in one split's folder `dir` (null when there is no state.json). */
async function stateFiles(dir: string): Promise<string[] | null> {
  const state = await readJson(`${dir}/state.json`) as { _data_files?: { filename?: unknown }[] } | undefined;
  if (state === undefined) return null;
  const files = Array.isArray(state?._data_files) ? state._data_files : [];
  if (files.length === 0) throw new DatasetError(`${dir}/state.json: "_data_files" lists no data files`);
  return files.map((f, k) => {
    if (!isPlainFileName(f?.filename)) {
      throw new DatasetError(`${dir}/state.json: _data_files[${k}] is not a file name in the folder`);
    }
    return `${dir}/${f.filename}`;
  });
}

/**
 * The splits of `dir` when it is a save_to_disk folder: a DatasetDict folder (dataset_dict.json lists the splits,
 * each a folder with its state.json) or one split's folder (state.json lists its files; its one split is called
 * train, as a single data file's is); null when it is neither.
 */
export async function saveToDiskSplits(dir: string): Promise<SavedSplits | null> {
  const dict = await readJson(`${dir}/dataset_dict.json`) as { splits?: unknown } | undefined;
  if (dict !== undefined) {
    const splits = Array.isArray(dict?.splits)
      ? dict.splits.filter((x): x is string => typeof x === "string")
      : [];
    return {
      splits,
      async files(split) {
        if (!splits.includes(split)) {
          throw new DatasetError(
            `${dir}: no split "${split}" in dataset_dict.json (splits: ${splits.join(", ")})`,
          );
        }
        const files = await stateFiles(`${dir}/${split}`);
        if (files === null) {
          throw new DatasetError(
            `${dir}/${split}/state.json: missing (split "${split}" of dataset_dict.json)`,
          );
        }
        return files;
      },
    };
  }
  const files = await stateFiles(dir);
  if (files === null) return null;
  return {
    splits: ["train"],
    files(split) {
      if (split !== "train") {
        return Promise.reject(
          new DatasetError(
            `${dir}: no split "${split}": a save_to_disk folder of one split (state.json, no ` +
              `dataset_dict.json) is the train split only; save the DatasetDict to have others`,
          ),
        );
      }
      return Promise.resolve(files);
    },
  };
}
