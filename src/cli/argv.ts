/**
 * One command-line parser for webdpo's commands and scripts (`webdpo data`, `generate`, the demo,
 * make-tiny-model): node:util's parseArgs underneath, plus what every command wants on top of it: typed values
 * (integers and numbers checked), `--snake_case` and `--kebab-case` spellings of one option, `-h`/`--help`,
 * and errors that name the option and suggest the nearest one.
 */
import { parseArgs } from "node:util";
import { WebDPOError } from "../gpu/errors.ts";
import { nearestKey } from "../util/nearest.ts";

/** What an option takes: a string, an integer, a number, or nothing (a flag). */
export type OptionKind = "string" | "int" | "number" | "flag";

export interface OptionSpec {
  kind: OptionKind;
  /** The option may repeat; its value is then the list of every value given (string options only). */
  multiple?: boolean;
  /** Other names for the option (without the leading dashes). */
  aliases?: readonly string[];
}

type ValueOf<O extends OptionSpec> = O["kind"] extends "flag" ? boolean
  : O["kind"] extends "string" ? (O["multiple"] extends true ? string[] : string)
  : number;

/** The parsed options (absent where not given), the positional arguments, and whether help was asked for. */
export interface CommandLine<S extends Record<string, OptionSpec>> {
  values: { [K in keyof S]?: ValueOf<S[K]> };
  positionals: string[];
  help: boolean;
}

/** A command line that cannot be parsed; the message names the option and what it takes. */
export class UsageError extends WebDPOError {}

/**
 * Parses `argv` against `spec` (option names in snake_case). Any `-` inside a long option's name counts as
 * `_`, so `--held-out 3` and `--held_out=3` are the same option. Positionals are allowed only with
 * `positionals: true`. Throws UsageError.
 */
export function parseCommandLine<S extends Record<string, OptionSpec>>(
  argv: readonly string[],
  spec: S,
  opts: { positionals?: boolean } = {},
): CommandLine<S> {
  const canonical = new Map<string, string>();
  for (const [name, o] of Object.entries(spec)) {
    canonical.set(name, name);
    for (const a of o.aliases ?? []) canonical.set(a, name);
  }
  // normalise the names (--held-out=3 → --held_out=3) and join an option with its value (--beta -1 →
  // --beta=-1, so that values starting with a dash, negative numbers, are values)
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--") || a === "--") {
      args.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = (eq < 0 ? a.slice(2) : a.slice(2, eq)).replaceAll("-", "_");
    const takesValue = canonical.has(name) && spec[canonical.get(name)!].kind !== "flag";
    const next = argv[i + 1];
    if (eq < 0 && takesValue && next !== undefined && !next.startsWith("--")) {
      args.push(`--${name}=${next}`);
      i++;
    } else args.push(`--${name}${eq < 0 ? "" : a.slice(eq)}`);
  }
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const name of canonical.keys()) {
    const o = spec[canonical.get(name)!];
    options[name] = {
      type: o.kind === "flag" ? "boolean" : "string",
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: opts.positionals ?? false, strict: true });
  } catch (e) {
    throw new UsageError(explain(e, [...canonical.keys()]));
  }
  const values: Record<string, unknown> = {};
  for (const [given, raw] of Object.entries(parsed.values)) {
    if (given === "help") continue;
    const name = canonical.get(given)!;
    const kind = spec[name].kind;
    if (kind === "flag" || kind === "string") {
      values[name] = raw;
      continue;
    }
    const s = String(raw);
    const v = Number(s);
    if (s.trim() === "" || !Number.isFinite(v) || (kind === "int" && !Number.isInteger(v))) {
      throw new UsageError(`--${given} must be ${kind === "int" ? "an integer" : "a number"}, got "${s}"`);
    }
    values[name] = v;
  }
  return {
    values: values as CommandLine<S>["values"],
    positionals: parsed.positionals,
    help: parsed.values.help === true,
  };
}

/** parseArgs' errors in webdpo's words: the option, and the nearest valid one for a typo. */
function explain(e: unknown, names: string[]): string {
  const msg = e instanceof Error ? e.message : String(e);
  const unknown = /Unknown option '(-{1,2}[^']*)'/.exec(msg);
  if (unknown) {
    const given = unknown[1].replace(/^-+/, "");
    const near = nearestKey(given, names);
    const all = names.map((n) => `--${n}`).join(", ");
    return near
      ? `unknown option ${unknown[1]}; did you mean --${near}? The options are ${all}`
      : `unknown option ${unknown[1]}; the options are ${all}`;
  }
  const missing = /Option '(?:-\w, )?(--[^ ']+)(?: <value>)?' argument (?:missing|is ambiguous)/.exec(msg);
  if (missing) return `${missing[1]} needs a value`;
  const positional = /Unexpected argument '([^']*)'/.exec(msg);
  if (positional) return `unexpected argument "${positional[1]}"`;
  return msg;
}
