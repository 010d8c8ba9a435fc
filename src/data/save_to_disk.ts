/**
 * The Arrow files of a `datasets.save_to_disk` folder: a DatasetDict folder (`dataset_dict.json` lists the
 * splits, each a folder of its own) or one split's folder (`state.json` lists its `data-*.arrow` files, Arrow IPC
 * streams that dataset.ts reads record batch by record batch).
 *
 * @module
 */
import { isPlainFileName } from "../util/fs.ts";
import { DatasetError } from "./tokenize_row.ts";

async function readJson(f: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(f));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new DatasetError(`${f}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
}

/**
 * The Arrow files of split `split` when `dir` is a save_to_disk folder: a split folder (state.json lists its
 * files) or a DatasetDict folder (dataset_dict.json lists the splits); null when it is neither.
 */
export async function saveToDiskFiles(dir: string, split: string): Promise<string[] | null> {
  const dict = await readJson(`${dir}/dataset_dict.json`) as { splits?: unknown } | undefined;
  if (dict !== undefined) {
    const splits = Array.isArray(dict?.splits)
      ? dict.splits.filter((x): x is string => typeof x === "string")
      : [];
    if (!splits.includes(split)) {
      throw new DatasetError(
        `${dir}: no split "${split}" in dataset_dict.json (splits: ${splits.join(", ")})`,
      );
    }
    return await saveToDiskFiles(`${dir}/${split}`, split) ?? [];
  }
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
