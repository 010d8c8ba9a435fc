/**
 * Fuzz target (run in the sandbox worker) for datasets: loads a dataset file (JSON, JSONL, gzipped, Parquet, Arrow)
 * or a `datasets.save_to_disk` folder and reads every row. A row that is not an object, or whose place does not
 * name its file, throws a plain Error.
 */
import { loadDataset } from "../../src/data/dataset.ts";

function invalid(why: string): never {
  throw new Error(`invalid result: ${why}`);
}

/** Loads `dir/<args.path>` (a file, or "." for the folder) and reads every row of split `args.split`. */
export async function datasetRows(dir: string, args: { path: string; split?: string }): Promise<unknown> {
  const path = args.path === "." ? dir : `${dir}/${args.path}`;
  const data = await loadDataset(path, { split: args.split });
  let rows = 0;
  for await (const r of data) {
    if (r.row === null || typeof r.row !== "object" || Array.isArray(r.row)) {
      invalid(`row ${r.index} is not an object`);
    }
    if (!r.where.startsWith(dir)) invalid(`row ${r.index} is at "${r.where}"`);
    rows++;
  }
  return { rows };
}
