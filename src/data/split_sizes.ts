/**
 * Every split of a dataset with its row count (`webdpo data`'s "rows per split"): a save_to_disk DatasetDict's
 * splits, the splits a folder's or hub snapshot's file names or `data_files` give, or the one train split of a
 * file. Counts come from the metadata of Parquet and Arrow files; JSON and JSONL files are read through.
 *
 * @module
 */
import { countFileRows } from "./file_rows.ts";
import { type DataFilesOptions, openDataset } from "./locate.ts";
import { DatasetError } from "./tokenize_row.ts";

/** One split, its rows and how many files hold them; or why it cannot be read. */
export type SplitSize =
  | { split: string; rows: number; files: number }
  | { split: string; problem: string };

/**
 * The splits of the dataset at `pathOrId` (in `datasets`' order) with their row counts; a split that cannot be
 * read (no file webdpo reads, a malformed row) is listed with the DatasetError's message.
 */
export async function splitSizes(pathOrId: string, opts: DataFilesOptions = {}): Promise<SplitSize[]> {
  const layout = await openDataset(pathOrId, opts);
  const out: SplitSize[] = [];
  for (const split of layout.splits) {
    try {
      const files = await layout.files(split);
      let rows = 0;
      for (const f of files) rows += await countFileRows(f);
      out.push({ split, rows, files: files.length });
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
      out.push({ split, problem: e.message });
    }
  }
  return out;
}
