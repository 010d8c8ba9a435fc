/**
 * How a config words its errors. Every config says the same things from the same checks ("lora_dropout must be
 * in [0, 1); got 1", "cannot be null", "did you mean ...?"); a voice sets what differs between them:
 *
 * - DPOConfig and `webdpo train` (src/dpo/config.ts): no prefix, `; got 'x'` with strings in single quotes;
 * - SFTConfig: the `SFTConfig: ` prefix, unknown keys as `unknown option "x"`, numbers as "a number";
 * - LoRA configs and PEFT adapter files: the `LoRA config: ` prefix, `, got` with the value as an excerpt of its
 *   JSON (an adapter_config.json comes from strangers: a value may be huge or nested past `String()`'s limit).
 *
 * @module
 */

/** What a voice is made of. */
export interface VoiceOptions {
  /** Starts every message ("LoRA config: "); default none. */
  prefix?: string;
  /** Joins a requirement and the value given: "; got " or ", got ". */
  got: string;
  /** A value given, as a message quotes it. */
  show: (value: unknown) => string;
  /** What a number is called when the value is not one (default "a finite number"). */
  number?: string;
  /** The error a message becomes. */
  error: (message: string) => Error;
  /** The message for a key the config does not have, and the nearest one it has (or null). */
  unknownKey: (key: string, near: string | null) => string;
}

/** The wording of one config's errors. */
export class Voice {
  readonly got: string;
  readonly show: (value: unknown) => string;
  readonly number: string;
  readonly unknownKey: (key: string, near: string | null) => string;
  readonly #prefix: string;
  readonly #error: (message: string) => Error;

  constructor(o: VoiceOptions) {
    this.got = o.got;
    this.show = o.show;
    this.number = o.number ?? "a finite number";
    this.unknownKey = o.unknownKey;
    this.#prefix = o.prefix ?? "";
    this.#error = o.error;
  }

  /** Throws `message` as this config's error. */
  fail(message: string): never {
    throw this.#error(this.#prefix + message);
  }

  /** Throws "`name` must be `requirement`; got `shown`". */
  must(name: string, requirement: string, shown: string): never {
    return this.fail(`${name} must be ${requirement}${this.got}${shown}`);
  }
}

/** A value for a message: strings in single quotes, anything else as JSON (or `String()` when JSON fails). */
export function showValue(v: unknown): string {
  if (typeof v === "string") return `'${v}'`;
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** `unknown <word> "key" (did you mean "near"?)`, the wording of the TypeScript APIs' own configs. */
export function quotedUnknownKey(word: string, candidates: () => readonly string[]) {
  return (key: string, near: string | null): string =>
    `unknown ${word} "${key}" ` +
    (near !== null
      ? `(did you mean "${near}"?)`
      : `(no ${word} is close; the ${word}s are ${candidates().join(", ")})`);
}
