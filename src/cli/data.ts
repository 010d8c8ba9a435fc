/**
 * `webdpo data DATASET --model DIR [--split S | --all_splits] [--dataset_config NAME] [--data_dir DIR]
 * [--max_length N] [--max_prompt_length N]`: what a dataset looks like to the trainer before any training — its
 * splits' sizes (src/data/split_sizes.ts), then the format, lengths and truncation of the split read
 * (src/data/inspect.ts).
 *
 * @module
 */
import { parseCommandLine, UsageError } from "./argv.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { loadDataset } from "../data/dataset.ts";
import { parseSplitSpec } from "../data/split_spec.ts";
import { DatasetError } from "../data/tokenize_row.ts";
import { formatDatasetReport, formatSplitSizes, inspectDataset } from "../data/inspect.ts";
import { splitSizes } from "../data/split_sizes.ts";
import { loadTokenizer } from "../tokenizer/tokenizer.ts";

export const DATA_USAGE =
  `usage: webdpo data DATASET --model DIR [--split S | --all_splits] [--dataset_config NAME] [--data_dir DIR]
                   [--max_length N] [--max_prompt_length N]

Lists every split of DATASET (a .json/.jsonl(.gz)/.parquet file, a datasets folder, a save_to_disk folder, or the
id of a hub dataset in the Hugging Face cache, like Anthropic/hh-rlhf) with its row count, then reads every row of
the split S with the tokenizer of the model folder DIR and prints the format it found (standard or
conversational, explicit or implicit prompt), the row count, token-length percentiles of prompts and answers,
and how many rows max_length and max_prompt_length (TRL's defaults 512 and 128 when not given) would shorten or
leave without any answer.

  --model DIR              the model folder whose tokenizer (and chat template) the run will use
  --split S                the split to read (default train), as load_dataset takes it: a slice such as
                           train[:1000] or train[:10%], or splits joined with +, such as train+test
  --all_splits             read every split in turn instead
  --dataset_config NAME    the subset: a config of the dataset's README.md, or a folder of it
  --data_dir DIR           read only the files under this folder of the dataset (e.g. harmless-base)
  --max_length N           default 512
  --max_prompt_length N    default 128
  -h, --help               this help`;

/**
 * `webdpo data ARGS`: 0 reported (or help), 2 a bad command line (a malformed --split included), 1 an unreadable
 * dataset or model.
 */
export async function dataCommand(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    // the lengths stay strings here: the check below wants positive integers and says so
    parsed = parseCommandLine(argv, {
      model: { kind: "string" },
      split: { kind: "string" },
      all_splits: { kind: "flag" },
      dataset_config: { kind: "string" },
      data_dir: { kind: "string" },
      max_length: { kind: "string" },
      max_prompt_length: { kind: "string" },
    }, { positionals: true });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`webdpo data: ${e.message}\n\n${DATA_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (parsed.help) {
    console.log(DATA_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1 || !v.model) {
    console.error(`webdpo data: give one DATASET and --model DIR\n\n${DATA_USAGE}`);
    return 2;
  }
  const int = (name: string, s: string | undefined, d: number): number | null => {
    if (s === undefined) return d;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) {
      console.error(`webdpo data: --${name} must be a positive integer, got "${s}"`);
      return null;
    }
    return n;
  };
  const maxLength = int("max_length", v.max_length, 512);
  const maxPromptLength = int("max_prompt_length", v.max_prompt_length, 128);
  if (maxLength === null || maxPromptLength === null) return 2;
  if (v.all_splits && v.split !== undefined) {
    console.error(`webdpo data: give --split or --all_splits, not both\n\n${DATA_USAGE}`);
    return 2;
  }
  const specs = v.all_splits ? [] : [v.split ?? "train"];
  try {
    if (specs.length > 0) parseSplitSpec(specs[0]);
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    console.error(`webdpo data: --split: ${e.message}`);
    return 2;
  }
  try {
    const path = parsed.positionals[0];
    const which = { name: v.dataset_config ?? null, dataDir: v.data_dir ?? null };
    const tok = await loadTokenizer(v.model);
    const sizes = await splitSizes(path, which);
    console.log(formatSplitSizes(sizes, specs));
    if (v.all_splits) specs.push(...sizes.filter((s) => !("problem" in s)).map((s) => s.split));
    const lengths = { maxLength, maxPromptLength };
    for (const split of specs) {
      const ds = await loadDataset(path, { ...which, split });
      const report = await inspectDataset(ds, tok, lengths);
      console.log(`\n${formatDatasetReport(ds.name, report, lengths)}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof WebDPOError || e instanceof Deno.errors.NotFound) {
      console.error(`webdpo data: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
