/**
 * TRL's dataset mixtures (TRL ≥ 0.22, `trl.scripts.utils.DatasetMixtureConfig`): a `datasets` list whose entries
 * are `datasets.load_dataset` calls — `path`, `name`, `data_dir`, `data_files`, `split`, `columns` — read one after
 * the other as one train set, with an optional `test_split_size` held out as the test split. This is where a TRL
 * 1.x config names a subset folder such as hh-rlhf's `harmless-base`:
 *
 * ```yaml
 * datasets:
 *   - path: Anthropic/hh-rlhf
 *     data_dir: harmless-base
 * test_split_size: 0.05
 * ```
 *
 * TRL draws the held-out rows without a seed (a different test set each run); webdpo draws them from `seed`, so a
 * run is repeatable. Rows keep their file order in both parts (the trainer shuffles).
 *
 * @module
 */
import { Generator } from "../tensor/random.ts";
import { Dataset, loadDataset, type LocatedRow } from "./dataset.ts";
import type { HubCacheOptions } from "./hub_cache.ts";
import { type DatasetMixtureEntry, mixtureProblem } from "./mixture_entries.ts";
import { DatasetError } from "./tokenize_row.ts";

/** Only `columns` of each row; a row without one of them is an error naming it. */
function selectColumns(ds: Dataset, columns: readonly string[], entry: string): Dataset {
  return new Dataset(ds.name, async function* () {
    for await (const r of ds) {
      const row: Record<string, unknown> = {};
      for (const c of columns) {
        if (!Object.hasOwn(r.row, c)) {
          throw new DatasetError(
            `${r.where}: no "${c}" column (${entry}'s columns lists it; the row has ${
              Object.keys(r.row).join(", ")
            })`,
          );
        }
        row[c] = r.row[c];
      }
      yield { ...r, row };
    }
  });
}

/** The entries' datasets one after the other, rows numbered through. */
function concatenate(parts: readonly Dataset[]): Dataset {
  return new Dataset(parts.map((d) => d.name).join(" + "), async function* () {
    let index = 0;
    for (const d of parts) for await (const r of d) yield { ...r, index: index++ };
  });
}

/** The rows whose numbers are (or are not) in `picked`, numbered again from 0. */
function subset(ds: Dataset, picked: ReadonlySet<number>, keep: boolean, name: string): Dataset {
  return new Dataset(name, async function* (): AsyncGenerator<LocatedRow> {
    let index = 0;
    for await (const r of ds) if (picked.has(r.index) === keep) yield { ...r, index: index++ };
  });
}

/** What a mixture is read with. */
export interface MixtureOptions extends HubCacheOptions {
  /** Rows held out as the test split: a share in (0, 1) (rounded up, as `datasets`) or a count; null: none. */
  testSplitSize?: number | null;
  /** The seed of the held-out draw. */
  seed?: number;
}

/** The train set of a mixture, and its test set when `testSplitSize` is given. */
export async function loadMixture(
  entries: readonly DatasetMixtureEntry[],
  opts: MixtureOptions = {},
): Promise<{ train: Dataset; test: Dataset | null }> {
  const problem = mixtureProblem(entries);
  if (problem !== null) throw new DatasetError(`datasets${problem.startsWith("[") ? "" : " "}${problem}`);
  const parts: Dataset[] = [];
  for (const [i, e] of entries.entries()) {
    const ds = await loadDataset(e.path, {
      split: e.split ?? "train",
      name: e.name ?? null,
      dataDir: e.data_dir ?? null,
      dataFiles: e.data_files ?? null,
      cacheDir: opts.cacheDir,
      revision: opts.revision,
    });
    parts.push(e.columns ? selectColumns(ds, e.columns, `datasets[${i}]`) : ds);
  }
  const all = parts.length === 1 ? parts[0] : concatenate(parts);
  const size = opts.testSplitSize ?? null;
  if (size === null) return { train: all, test: null };
  const n = await all.count();
  const nTest = size < 1 ? Math.ceil(size * n) : size;
  if (!(size > 0) || (size >= 1 && !Number.isInteger(size)) || nTest >= n || nTest < 1) {
    throw new DatasetError(
      `test_split_size ${size} does not split ${all.name} (${n} rows) into a test set and a non-empty train ` +
        `set: give a share in (0, 1) or a row count below ${n}`,
    );
  }
  const order = new Generator(opts.seed ?? 42).shuffle(Array.from({ length: n }, (_, i) => i));
  const held = new Set(order.slice(0, nTest));
  return {
    train: subset(all, held, false, `${all.name} [train: ${n - nTest} of ${n} rows]`),
    test: subset(all, held, true, `${all.name} [test: ${nTest} of ${n} rows]`),
  };
}
