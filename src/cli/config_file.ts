/**
 * The configuration of `webdpo train`: a YAML file with TRL's snake_case keys (`--config dpo.yaml`), overridden by
 * command-line flags (`--beta 0.2 --loss_type ipo`), parsed and typed by the table in src/dpo/config_table.ts (the
 * text of each value typed by src/config/text.ts) into a validated DPOConfig and the script keys (model, reference
 * model, dataset and splits). `trainHelp()` is the text of `webdpo train --help`, generated from the same table.
 *
 * Flags: `--key value` or `--key=value` (`--key-name` is read as `--key_name`); booleans as `--flag` alone or with
 * true/false (also yes/no, 1/0); lists comma-separated (`--loss_type sigmoid,sft`) or the flag repeated, replacing
 * the YAML's list; mappings as JSON (`--lr_scheduler_kwargs '{"min_lr_rate": 0.1}'`) or `k=v,k=v`; `null` unsets a
 * key that may be unset (`none` too, for numbers, booleans and mappings). In the YAML, quoted numbers and booleans
 * are read as the key's type, as TRL's parser does. Relative paths are relative to the working directory, as TRL's.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";
import { helpEntry, parseBool, typeLabel, valueFromText } from "../config/text.ts";
import {
  checkFieldValue,
  ConfigError,
  DPO_VOICE,
  DPOConfig,
  type DPOConfigOptions,
  unknownKeyMessage,
} from "../dpo/config.ts";
import { FIELD_BY_NAME, FIELDS, type FieldSpec, type TrainScriptArgs } from "../dpo/config_table.ts";
import { type LoraConfig, loraConfig, LoraError } from "../nn/lora_config.ts";

export { ConfigError, typeLabel };
export type { TrainScriptArgs };

/** What `webdpo train` runs with. */
export interface TrainConfig {
  /** The validated DPO and training options. */
  config: DPOConfig;
  /**
   * model_name_or_path, ref_model_name_or_path, dataset_name, dataset_config, dataset_train_split,
   * dataset_test_split, datasets, test_split_size and TRL's
   * ModelConfig LoRA keys (use_peft, lora_*, use_rslora) and webdpo's int8_base, camelCase.
   */
  script: TrainScriptArgs;
  /**
   * The LoRA configuration `use_peft` asks for (lora_r, lora_alpha, lora_dropout, lora_target_modules,
   * lora_modules_to_save, use_rslora with TRL's defaults), to pass to DPOTrainer as `peftConfig`; null without
   * use_peft. `script.int8Base` asks for an int8 frozen base (quantizeBase) besides.
   */
  peftConfig: LoraConfig | null;
}

/** The flags of a `webdpo train` command line, before typing. */
export interface TrainArgs {
  /** `-h` / `--help` was given. */
  help: boolean;
  /** The value of `--config`, if given. */
  configPath?: string;
  /** Each key's raw values in order (snake_case key; `true` for a flag given without a value). */
  flags: Map<string, (string | true)[]>;
}

/** Splits a `webdpo train` command line into `--config`, `--help` and the other flags (raw strings). */
export function parseTrainArgs(argv: readonly string[]): TrainArgs {
  const out: TrainArgs = { help: false, flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i];
    if (tok === "-h" || tok === "--help") {
      out.help = true;
      continue;
    }
    if (!tok.startsWith("--") || tok.length === 2) {
      throw new ConfigError(
        `unexpected argument '${tok}': options are given as --key value or --key=value (see webdpo train --help)`,
      );
    }
    const eq = tok.indexOf("=");
    const rawKey = eq < 0 ? tok.slice(2) : tok.slice(2, eq);
    const key = rawKey.replace(/-/g, "_");
    let value: string | true | undefined = eq < 0 ? undefined : tok.slice(eq + 1);
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith("--") && next !== "-h";
    if (key === "config") {
      if (value === undefined) {
        if (!nextIsValue) throw new ConfigError("--config needs the path of a YAML file");
        value = argv[++i];
      }
      if (value === "") throw new ConfigError("--config needs the path of a YAML file");
      if (out.configPath !== undefined) throw new ConfigError("--config is given more than once");
      out.configPath = value as string;
      continue;
    }
    const f = FIELD_BY_NAME.get(key);
    if (f === undefined || f.name !== key) {
      throw new ConfigError(unknownKeyMessage(key, "snake", FIELDS, true));
    }
    if (value === undefined) {
      const kind = f.type.kind;
      if (kind === "bool") {
        if (nextIsValue && parseBool(next!) !== undefined) value = argv[++i];
        else if (nextIsValue && f.nullable && next!.toLowerCase() === "null") value = argv[++i];
        else value = true;
      } else if (kind === "boolOrPath") {
        value = nextIsValue ? argv[++i] : true;
      } else {
        if (!nextIsValue) throw new ConfigError(`--${key} needs a value (${typeLabel(f)})`);
        value = argv[++i];
      }
    }
    const list = out.flags.get(key) ?? [];
    list.push(value);
    out.flags.set(key, list);
  }
  return out;
}

/** Whether a `webdpo train` command line asks for help. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes("-h") || argv.includes("--help");
}

/**
 * Types the string(s) given for one key (a flag's values, or a quoted YAML scalar) by the key's table type.
 * `where` names the source in errors ("--beta", "dpo.yaml: beta").
 */
export function parseValue(f: FieldSpec, raw: readonly (string | true)[], where: string): unknown {
  return valueFromText(f, raw, where, DPO_VOICE);
}

/** Reads the values of a YAML mapping, typing quoted scalars by the table (as TRL's parser does). */
function fromYaml(doc: Record<string, unknown>, file: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const [key, v] of Object.entries(doc)) {
    const f = FIELD_BY_NAME.get(key);
    if (f === undefined || f.name !== key) {
      errors.push(unknownKeyMessage(key, "snake", FIELDS));
      continue;
    }
    const kind = f.type.kind;
    const where = `${file}: ${key}`;
    if (typeof v === "string" && ["number", "int", "steps", "bool", "map"].includes(kind)) {
      out[key] = parseValue(f, [v], where);
    } else if (kind === "numberList" && (typeof v === "string" || Array.isArray(v))) {
      const items = typeof v === "string" ? [v] : v;
      out[key] = items.map((x) => (typeof x === "string" ? (parseValue(f, [x], where) as number[])[0] : x));
    } else {
      out[key] = v;
    }
  }
  if (errors.length === 1) throw new ConfigError(`${file}: ${errors[0]}`);
  if (errors.length > 1) {
    throw new ConfigError(`${file}: ${errors.length} unknown keys:\n  ${errors.join("\n  ")}`);
  }
  return out;
}

/** Reads a YAML config file into snake_case values (typed where the YAML quoted them). */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(
      `cannot read the config file ${path}: ${
        e instanceof Deno.errors.NotFound ? "no such file" : String(e)
      }`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { logLevel: "error" }); // a complex key is reported below as an unknown key
  } catch (e) {
    throw new ConfigError(`${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      `${path} must be a YAML mapping of keys to values (key: value lines); got ${typeof doc}`,
    );
  }
  return fromYaml(doc as Record<string, unknown>, path);
}

/**
 * The configuration of `webdpo train`: defaults < the YAML file (`yamlPath`, or `--config` in `argv`) < the flags
 * of `argv`. Throws a ConfigError naming the file or flag and what is allowed; `--help` in argv is an error here
 * (check `wantsHelp(argv)` first and print `trainHelp()`).
 */
export async function loadTrainConfig(
  yamlPath: string | undefined,
  argv: readonly string[],
  options: Omit<DPOConfigOptions, "nameStyle"> = {},
): Promise<TrainConfig> {
  const args = parseTrainArgs(argv);
  if (args.help) throw new ConfigError("--help was given: print trainHelp() instead of loading a config");
  if (yamlPath !== undefined && args.configPath !== undefined) {
    throw new ConfigError(`two config files: ${yamlPath} and --config ${args.configPath}; give one`);
  }
  const file = yamlPath ?? args.configPath;
  const values: Record<string, unknown> = file !== undefined ? await readConfigFile(file) : {};
  for (const [key, raw] of args.flags) values[key] = parseValue(FIELD_BY_NAME.get(key)!, raw, `--${key}`);
  try {
    return buildTrainConfig(values, options);
  } catch (e) {
    // a value or combination of the file's (or of the file and the flags): the message names the key
    if (!(e instanceof ConfigError) || file === undefined) throw e;
    throw new ConfigError(`${file}${args.flags.size ? " (with the command-line flags)" : ""}: ${e.message}`);
  }
}

/** Splits snake_case values into the script keys and a validated DPOConfig. */
export function buildTrainConfig(
  values: Record<string, unknown>,
  options: Omit<DPOConfigOptions, "nameStyle"> = {},
): TrainConfig {
  const script: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (FIELD_BY_NAME.get(k)?.group === "script") continue;
    rest[k] = v;
  }
  for (const f of FIELDS) {
    if (f.group !== "script") continue;
    const v = values[f.name];
    if (v === undefined) {
      if (f.required) {
        throw new ConfigError(`${f.name} is required (in the YAML file or as --${f.name}): ${f.doc}`);
      }
      script[f.camel] = f.default;
      continue;
    }
    if (v === null && f.nullable) {
      script[f.camel] = null;
      continue;
    }
    script[f.camel] = checkFieldValue(f, v, "snake");
  }
  checkDataKeys(script as unknown as TrainScriptArgs, values);
  const config = DPOConfig.fromSnakeCase(rest, options);
  const frozen = Object.freeze(script) as TrainScriptArgs;
  return { config, script: frozen, peftConfig: peftConfigFromScript(frozen) };
}

/**
 * Where the data comes from: `dataset_name` (with `dataset_config` and the split keys) or TRL's `datasets`
 * mixture (with `test_split_size`), exactly one of them. TRL ignores the `dataset_*` keys when `datasets` is given
 * (with a warning for dataset_name); webdpo says so instead of running on data the YAML did not mean.
 */
function checkDataKeys(script: TrainScriptArgs, given: Record<string, unknown>): void {
  const datasetName = FIELD_BY_NAME.get("dataset_name")!;
  if (script.datasets === null) {
    if (script.datasetName === null) {
      throw new ConfigError(
        `dataset_name is required (in the YAML file or as --dataset_name), or a \`datasets\` list: ${datasetName.doc}`,
      );
    }
    if (script.testSplitSize !== null) {
      throw new ConfigError(
        "test_split_size splits a `datasets` mixture; with dataset_name, name the test split with " +
          "dataset_test_split instead",
      );
    }
    return;
  }
  const ignored = ["dataset_name", "dataset_config"].filter((k) =>
    given[k] !== undefined && given[k] !== null
  );
  if (ignored.length > 0) {
    throw new ConfigError(
      `datasets and ${ignored.join(" and ")} both say which data to use (TRL would ignore ${
        ignored.join(" and ")
      }` +
        "): give one",
    );
  }
  // TRL's mixture is a dataset dict of "train" (and "test" with test_split_size), indexed by the split keys
  if (script.datasetTrainSplit !== "train" || script.datasetTestSplit !== "test") {
    throw new ConfigError(
      "a `datasets` mixture has the splits train and test (test only with test_split_size), so " +
        `dataset_train_split must be train and dataset_test_split test (got ${script.datasetTrainSplit} and ` +
        `${script.datasetTestSplit})`,
    );
  }
}

/**
 * The LoRA configuration of TRL's ModelConfig keys (TRL's `get_peft_config`): null unless `use_peft`. The lora_*
 * keys without use_peft are ignored, as TRL ignores them; `int8_base` without use_peft is an error (a frozen
 * int8 base with nothing to train).
 */
export function peftConfigFromScript(script: TrainScriptArgs): LoraConfig | null {
  if (!script.usePeft) {
    if (script.int8Base) {
      throw new ConfigError(
        "int8_base freezes the base in int8, so it needs use_peft: true (a LoRA adapter to train)",
      );
    }
    return null;
  }
  try {
    return loraConfig({
      r: script.loraR,
      loraAlpha: script.loraAlpha,
      loraDropout: script.loraDropout,
      targetModules: script.loraTargetModules === null
        ? null
        : typeof script.loraTargetModules === "string"
        ? script.loraTargetModules
        : [...script.loraTargetModules],
      modulesToSave: script.loraModulesToSave === null
        ? null
        : typeof script.loraModulesToSave === "string"
        ? [script.loraModulesToSave]
        : [...script.loraModulesToSave],
      useRslora: script.useRslora,
    });
  } catch (e) {
    throw e instanceof LoraError ? new ConfigError(e.message) : e;
  }
}

/** The text of `webdpo train --help`: every key, grouped, with its type, default and one line of documentation. */
export function trainHelp(): string {
  const lines = [
    "usage: webdpo train [--config dpo.yaml] [--key value ...]",
    "",
    "Trains a causal LM with DPO. Keys are TRL's snake_case names: `key: value` in the YAML file, `--key value` or",
    "`--key=value` on the command line, where they override the YAML. Booleans: `--flag` or `--flag false`. Lists:",
    "`a,b` or the flag repeated. Mappings: JSON or `k=v,k=v`. `null` unsets a key whose default is unset.",
    "Each key is marked with the TRL releases whose `trl dpo --config` accepts it; remove the webdpo-only keys",
    "(and keys outside your TRL's range) before running the same YAML under TRL.",
    "",
    "options:",
    "  --config <path>  a YAML file of the keys below",
    "  -h, --help       this help",
  ];
  const sections: [string, (f: FieldSpec) => boolean][] = [
    ["script", (f) => f.group === "script" && f.trl !== null],
    ["DPO", (f) => f.group === "dpo" && f.trl !== null],
    ["training", (f) => f.group === "training" && f.trl !== null],
    ["webdpo-only", (f) => f.trl === null],
  ];
  for (const [title, pick] of sections) {
    const rows = FIELDS.filter(pick);
    if (rows.length === 0) continue;
    lines.push("", `${title}:`);
    for (const f of rows) {
      lines.push(...helpEntry(f));
    }
  }
  return lines.join("\n");
}
