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
 * An entry's `split` is a split spec (`train[:10%]`, `train+test`: split_spec.ts), as load_dataset takes it.
 *
 * `fraction` (TRL ≥ 1.8, given for every entry or none) sets each entry's target share of the mixture, as TRL's
 * `get_dataset` does: the fractions are normalized to weights w_i = f_i / Σf; the mixture's size is the largest T
 * that oversamples no entry, T = min over w_i > 0 of n_i / w_i (n_i the entry's rows); and each entry keeps its
 * first round(w_i · T) rows (Python's round: ties to even), in file order. The entry that binds T is kept whole;
 * an entry of fraction 0 adds nothing. E.g. fractions 0.75 and 0.25 of two 12-row entries: T = 16, so all 12 rows
 * of the first and the first 4 of the second.
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

/** The first `k` rows of `ds`. */
function firstRows(ds: Dataset, k: number, name: string): Dataset {
  return new Dataset(name, async function* () {
    if (k <= 0) return;
    let n = 0;
    for await (const r of ds) {
      yield r;
      if (++n >= k) return;
    }
  });
}

/** Python's round() of a float: to the nearest integer, ties to the even one. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/**
 * How many leading rows of each entry TRL's `fraction` keeps (see the module comment), with the float arithmetic
 * TRL does (sum left to right, n/w, w·T), so the counts match its own.
 */
export function fractionCounts(fractions: readonly number[], sizes: readonly number[]): number[] {
  const sum = fractions.reduce((a, b) => a + b, 0);
  const weights = fractions.map((f) => f / sum);
  const total = Math.min(...sizes.flatMap((n, i) => weights[i] > 0 ? [n / weights[i]] : []));
  return weights.map((w) => roundHalfEven(w * total));
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
  if (entries.every((e) => e.fraction !== undefined && e.fraction !== null)) {
    const sizes: number[] = [];
    for (const p of parts) sizes.push(await p.count());
    const keep = fractionCounts(entries.map((e) => e.fraction!), sizes);
    if (keep.every((k) => k === 0)) {
      throw new DatasetError(
        `datasets: the fractions keep no rows (entries of ${
          sizes.join(", ")
        } rows; an entry with a fraction > 0 ` +
          "and no rows makes the whole mixture empty)",
      );
    }
    for (const [i, p] of parts.entries()) {
      parts[i] = firstRows(p, keep[i], `${p.name} [first ${keep[i]} of ${sizes[i]} rows]`);
    }
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
