/**
 * `SFTConfig`: the options of a supervised fine-tuning run (the subset of TRL's `SFTConfig` that `SFTTrainer`
 * implements, with every training argument the loop of src/train reads), camelCase in TypeScript, built and
 * validated by the config builder of src/config from the shared training rows and the SFT rows below, as
 * DPOConfig is: each value against its row, unknown options named with the nearest valid one, the training
 * arguments' rules between them (run length, schedule options, report_to, eval_steps' fallback) and their
 * warnings. The object is frozen: use `with()` for a changed copy.
 *
 * Defaults are TRL's SFTConfig values, with three deliberate differences:
 * - `assistantOnlyLoss` defaults to true (TRL: false), because webdpo's SFT stage exists to train chat models
 *   whose loss belongs on the assistant turns only;
 * - `saveStrategy` defaults to "no" and `reportTo` to ["none"] (TRL: "steps" and every integration): an SFT run
 *   writes checkpoints and `outputDir/metrics.jsonl` only when asked, as it did before it had these options.
 *
 * @module
 */
import type { ConfigValues, SameType } from "../config/field.ts";
import { bool, int, str, withDefaults, withDocs } from "../config/field.ts";
import { ConfigSchema, deepFreeze, isPlainObject, printWarningsOnce } from "../config/schema.ts";
import {
  checkTrainingArgs,
  type REPORT_TO_VALUES,
  TRAINING_ROWS,
  type TrainingValues,
  warnOverridden,
  warnUnusedIntervals,
} from "../config/training.ts";
import { quotedUnknownKey, showValue, Voice } from "../config/voice.ts";
import { WebDPOError } from "../gpu/errors.ts";

/** An invalid SFT option: an unknown key, a value of the wrong type or out of range, or an invalid combination. */
export class SFTConfigError extends WebDPOError {}

/** The training arguments with TRL's SFTConfig defaults and SFTTrainer's own. */
const SFT_TRAINING_ROWS = withDocs(
  withDefaults(TRAINING_ROWS, {
    output_dir: "outputs/sft",
    learning_rate: 2e-5,
    logging_steps: 10,
    save_strategy: "no",
    report_to: ["none"],
    disable_tqdm: false,
  }),
  {
    output_dir: "where checkpoints, metrics.jsonl and save() write (default outputs/sft)",
    learning_rate: "peak AdamW learning rate (TRL's SFTConfig default 2e-5)",
    logging_steps: "log every this many optimizer steps (< 1: a fraction of the run); TRL's SFTConfig: 10",
    save_strategy:
      "when to write output_dir/checkpoint-<step>: never (the default here), every save_steps, or " +
      "after each epoch",
    report_to: "metric sinks: jsonl (output_dir/metrics.jsonl), all (= jsonl), none (the default here)",
    disable_tqdm: "no progress bar (log lines remain); false: a bar when stderr is a terminal",
  },
);

/** SFTTrainer's own options. */
const SFT_ROWS = [
  int("max_length", 1024, { min: 2 }).doc("sequences are truncated to this many tokens, keeping the start"),
  bool("assistant_only_loss", true).doc(
    "conversational rows: score only the assistant turns (TRL's default false; true here, see above)",
  ),
  bool("completion_only_loss", null).doc("prompt/completion rows: score only the completion; unset: true"),
  str("dataset_text_field", "text").doc("the column of plain language-modelling rows"),
  int("label_pad_token_id", -100).doc("the label of positions that are not scored"),
  bool("padding_free", true).doc(
    "run each batch's real tokens as one packed sequence, no compute on padding (on by default, unlike TRL)",
  ),
];

/** Every option of SFTConfig after construction (camelCase), as its rows type them. */
export interface SFTConfigValues extends Omit<TrainingValues, "disableTqdm" | "reportTo"> {
  readonly disableTqdm: boolean;
  readonly reportTo: readonly (typeof REPORT_TO_VALUES[number])[];
  readonly maxLength: number;
  readonly assistantOnlyLoss: boolean;
  readonly completionOnlyLoss: boolean | null;
  readonly datasetTextField: string;
  readonly labelPadTokenId: number;
  readonly paddingFree: boolean;
}

const _rowsMatch: SameType<
  ConfigValues<typeof SFT_TRAINING_ROWS[number] | typeof SFT_ROWS[number]>,
  SFTConfigValues
> = true;

/** What `new SFTConfig(...)` takes: any options (camelCase); the rest get their defaults. */
export type SFTConfigInit = { -readonly [K in keyof SFTConfigValues]?: SFTConfigValues[K] };

const SCHEMA: ConfigSchema = new ConfigSchema(
  [...SFT_TRAINING_ROWS, ...SFT_ROWS],
  new Voice({
    prefix: "SFTConfig: ",
    got: "; got ",
    show: showValue,
    // the wording of SFTConfig's type errors from its first release ("learningRate must be a number")
    number: "a number",
    error: (m) => new SFTConfigError(m),
    unknownKey: quotedUnknownKey("option", () => SCHEMA.keys("camel")),
  }),
);

/** SFTConfig's fields, typed from its rows (merged into the class below). */
export interface SFTConfig extends SFTConfigValues {}

/** The options of an SFT run; `new SFTConfig({ learningRate: 1e-3, maxSteps: 200 })`. */
export class SFTConfig {
  /** Problems that do not stop a run (an option its strategy ignores, one another option overrides). */
  readonly warnings: readonly string[];

  /** Applies the defaults to `init`, validates every value and combination, and collects the warnings. */
  constructor(init: SFTConfigInit = {}, options: { printWarnings?: boolean } = {}) {
    if (!isPlainObject(init)) SCHEMA.voice.fail(`expected an object of options; got ${showValue(init)}`);
    const { values, warnings } = SCHEMA.resolve(init, {
      keys: "camel",
      rules: (r) => {
        checkTrainingArgs(r);
        warnUnusedIntervals(r);
        warnOverridden(r);
      },
    });
    this.warnings = Object.freeze(warnings);
    Object.assign(this, values);
    deepFreeze(values);
    Object.freeze(this);
    if (options.printWarnings ?? true) printWarningsOnce(warnings);
  }

  /** Every option, camelCase, as a plain object (copies of lists and mappings). */
  toCamelCase(): SFTConfigInit {
    return SCHEMA.toCamelCase(this) as SFTConfigInit;
  }

  /** Every option under its snake_case (TRL) name, as plain data (what a checkpoint's training_args.json holds). */
  toSnakeCase(options: { omitDefaults?: boolean } = {}): Record<string, unknown> {
    return SCHEMA.toSnakeCase(this, options);
  }

  /** A validated copy with some options changed. */
  with(changes: SFTConfigInit, options: { printWarnings?: boolean } = {}): SFTConfig {
    return new SFTConfig({ ...this.toCamelCase(), ...changes }, options);
  }
}
