/**
 * The config builder of src/config on its own (pure TypeScript, no GPU): rows from the helpers, the value checks
 * in a config's voice, key spellings and aliases, required keys and defaults, the rules' context, shared rows with
 * a config's own defaults, and DPO's table built from the shared training rows.
 */
import assert from "node:assert/strict";
import { checkValue } from "../src/config/check.ts";
import {
  bool,
  type ConfigInit,
  type ConfigValues,
  float,
  int,
  map,
  oneOf,
  REQUIRED,
  str,
  withDefaults,
  withDocs,
} from "../src/config/field.ts";
import { ConfigSchema } from "../src/config/schema.ts";
import { helpEntry, typeLabel, valueFromText } from "../src/config/text.ts";
import { TRAINING_ROWS } from "../src/config/training.ts";
import { quotedUnknownKey, showValue, Voice } from "../src/config/voice.ts";
import { CONFIG_FIELDS } from "../src/dpo/config_table.ts";
import { editDistance, nearestKey } from "../src/util/nearest.ts";

class TestError extends Error {}

const voice = (o: Partial<ConstructorParameters<typeof Voice>[0]> = {}) =>
  new Voice({
    prefix: "Test: ",
    got: "; got ",
    show: showValue,
    error: (m) => new TestError(m),
    unknownKey: quotedUnknownKey("option", () => ["size", "rate"]),
    ...o,
  });

const ROWS = [
  int("size", 8, { min: 1, aliases: ["n"] }).doc("how many"),
  float("rate", 0.5, { gt: 0, lt: 1 }).doc("a rate in (0, 1)"),
  str("out_dir", REQUIRED).doc("where it goes"),
  oneOf("mode", ["fast", "slow"], "fast").doc("how"),
  map("extra", {}).doc("anything else"),
  bool("flag", null, { trl: ["0.9", "0.29"] }).doc("a nullable switch"),
];

function throwsTest(fn: () => unknown, message: string): void {
  assert.throws(fn, (e) => e instanceof TestError && e.message === message);
}

Deno.test("row helpers: names, types, defaults, nullable and required keys, TRL releases", () => {
  const [size, rate, out, mode, _extra, flag] = ROWS;
  assert.deepEqual(
    [size.name, size.camel, size.type, size.default, size.nullable, size.aliases],
    ["size", "size", { kind: "int", min: 1 }, 8, false, ["n"]],
  );
  assert.deepEqual(rate.type, { kind: "number", min: 0, minOpen: true, max: 1, maxOpen: true });
  assert.deepEqual([out.camel, out.required, out.default], ["outDir", true, undefined]);
  assert.deepEqual(mode.type, { kind: "enum", values: ["fast", "slow"] });
  assert.deepEqual([flag.nullable, flag.default, flag.trl], [true, null, { since: "0.9", until: "0.29" }]);
  assert.equal("trl" in size, false, "unset: every TRL release from 0.9 on");
  assert.ok(Object.isFrozen(size));
  // the rows' types make the config's types
  type Values = ConfigValues<typeof ROWS[number]>;
  const v: Values = { size: 1, rate: 0.1, outDir: "o", mode: "slow", extra: {}, flag: null };
  const init: ConfigInit<typeof ROWS[number]> = { outDir: "o" };
  // @ts-expect-error: outDir is required
  const missing: ConfigInit<typeof ROWS[number]> = { size: 2 };
  // @ts-expect-error: mode is one of its values
  const wrong: Values = { ...v, mode: "medium" };
  assert.ok(init && missing && wrong);
});

Deno.test("values are checked against their rows, in the config's voice", () => {
  const [size, rate, , mode, extra] = ROWS;
  const v = voice();
  assert.equal(checkValue(size, 3, "size", v), 3);
  throwsTest(() => checkValue(size, 0, "size", v), "Test: size must be an integer ≥ 1; got 0");
  throwsTest(() => checkValue(size, "3", "size", v), "Test: size must be an integer ≥ 1; got '3'");
  throwsTest(() => checkValue(size, null, "size", v), "Test: size cannot be null (default 8)");
  throwsTest(() => checkValue(rate, 1, "rate", v), "Test: rate must be in (0, 1); got 1");
  throwsTest(() => checkValue(rate, "x", "rate", v), "Test: rate must be a finite number in (0, 1); got 'x'");
  throwsTest(
    () => checkValue(mode, "fsat", "mode", v),
    "Test: mode must be one of fast, slow; got 'fsat' (did you mean 'fast'?)",
  );
  const m = { a: [1] };
  const kept = checkValue(extra, m, "extra", v) as typeof m;
  assert.deepEqual(kept, m);
  assert.notEqual(kept.a, m.a, "mappings are copied");
  // another voice: another separator, value display and word for numbers
  const other = voice({ prefix: "", got: ", got ", show: (x) => `<${x}>`, number: "a number" });
  throwsTest(() => checkValue(rate, "x", "r", other), "r must be a number in (0, 1), got <x>");
  // a row's own check replaces its type's
  const even = int("even", 2, {
    check: (x, name, vc) => (x as number) % 2 === 0 ? x : vc.fail(`${name} must be even`),
  }).doc("an even number");
  throwsTest(() => checkValue(even, 3, "even", v), "Test: even must be even");
});

Deno.test("resolve: spellings, aliases, unknown keys with the nearest one, required keys and defaults", () => {
  const schema = new ConfigSchema(ROWS, voice());
  const { values } = schema.resolve({ outDir: "o", size: 3, extra: undefined }, { keys: "camel" });
  assert.deepEqual(values, { size: 3, rate: 0.5, outDir: "o", mode: "fast", extra: {}, flag: null });
  throwsTest(
    () => schema.resolve({ out_dir: "o" }, { keys: "camel" }),
    'Test: unknown option "out_dir" (did you mean "outDir"?)',
  );
  throwsTest(
    () => schema.resolve({ outDir: "o", zzzzzz: 1 }, { keys: "camel" }),
    'Test: unknown option "zzzzzz" (no option is close; the options are size, rate)',
  );
  throwsTest(() => schema.resolve({}, { keys: "camel" }), "Test: outDir is required: where it goes");
  throwsTest(
    () => schema.resolve({}, { keys: "camel", style: "snake" }),
    "Test: out_dir is required: where it goes",
  );
  // any spelling and the aliases; messages name keys as given
  assert.equal(schema.resolve({ out_dir: "o", n: 4 }).values.size, 4);
  throwsTest(() => schema.resolve({ out_dir: "o", n: 0 }), "Test: n must be an integer ≥ 1; got 0");
  throwsTest(
    () => schema.resolve({ out_dir: "o", n: 4, size: 5 }),
    'Test: "size" and "n" set the same option',
  );
  // defaults are copies
  const a = schema.resolve({ out_dir: "o" }).values;
  (a.extra as Record<string, unknown>).x = 1;
  assert.deepEqual(schema.resolve({ out_dir: "o" }).values.extra, {});
});

Deno.test("rules see the values, name keys in the style, fail, warn, and fill derived defaults", () => {
  const schema = new ConfigSchema(ROWS, voice());
  const seen: unknown[] = [];
  const { values, warnings } = schema.resolve({ out_dir: "o", mode: "slow", rate: 0.5 }, {
    keys: "snake",
    style: "camel",
    rules: (r) => {
      seen.push(r.n("out_dir"), r.given("rate"), r.changed("rate"), r.changed("mode"), r.given("size"));
      r.unusedUnless("mode", r.v.flag === true, `${r.n("flag")} is not set`);
      r.v.flag = false;
    },
  });
  assert.deepEqual(seen, ["outDir", true, false, true, false]);
  assert.deepEqual(warnings, ["mode has no effect: flag is not set"]);
  assert.equal(values.flag, false);
  throwsTest(
    () => schema.resolve({ out_dir: "o" }, { rules: (r) => r.fail(`${r.n("size")} is wrong`) }),
    "Test: size is wrong",
  );
  assert.throws(() => schema.resolve({ out_dir: "o" }, { rules: (r) => r.given("nope") }), /not a key/);
});

Deno.test("shared rows with a config's own defaults and wording; snake_case and camelCase copies", () => {
  const rows = withDocs(withDefaults(ROWS, { out_dir: "out", flag: false }), { size: "how many here" });
  const [size, , out, , , flag] = rows;
  assert.deepEqual([out.required, out.default, out.nullable], [undefined, "out", false]);
  assert.deepEqual([flag.default, flag.nullable], [false, false]);
  assert.equal(size.doc, "how many here");
  assert.throws(() => withDefaults(ROWS, { nope: 1 } as never), /no row is named nope/);
  const schema = new ConfigSchema(rows, voice());
  const config = schema.resolve({ size: 2 }, { keys: "camel" }).values;
  assert.deepEqual(schema.toSnakeCase(config), {
    size: 2,
    rate: 0.5,
    out_dir: "out",
    mode: "fast",
    extra: {},
    flag: false,
  });
  assert.deepEqual(schema.toSnakeCase(config, { omitDefaults: true }), { size: 2 });
  assert.deepEqual(schema.toCamelCase(config), config);
  assert.throws(
    () => new ConfigSchema([...ROWS, int("n", 1).doc("clashes with an alias")], voice()),
    /spelt n/,
  );
});

Deno.test("DPOConfig's training section is the shared training rows, in order, with DPO's wording", () => {
  const training = CONFIG_FIELDS.filter((f) => f.group === "training");
  assert.deepEqual(training.map((f) => f.name), TRAINING_ROWS.map((f) => f.name));
  const worded = training.filter((f, i) => f.doc !== TRAINING_ROWS[i].doc).map((f) => f.name);
  assert.deepEqual(worded, [
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "learning_rate",
    "eval_strategy",
  ]);
  training.forEach((f, i) => {
    assert.deepEqual([f.type, f.default, f.nullable], [
      TRAINING_ROWS[i].type,
      TRAINING_ROWS[i].default,
      TRAINING_ROWS[i].nullable,
    ]);
  });
});

Deno.test("text: flag and YAML strings typed by any config's rows, labels and --help entries", () => {
  const [size, rate, , mode, extra, flag] = ROWS;
  const v = voice();
  assert.equal(valueFromText(size, ["12"], "--size", v), 12);
  assert.equal(valueFromText(flag, [true], "--flag", v), true);
  assert.equal(valueFromText(flag, ["none"], "--flag", v), null);
  assert.deepEqual(valueFromText(extra, ["a=1,b=x"], "--extra", v), { a: 1, b: "x" });
  throwsTest(() => valueFromText(rate, ["fast"], "--rate", v), "Test: --rate expects a number; got 'fast'");
  throwsTest(
    () => valueFromText(size, ["1", "2"], "--size", v),
    "Test: --size is given 2 times; give it once",
  );
  assert.deepEqual([typeLabel(size), typeLabel(rate), typeLabel(mode)], [
    "int ≥ 1",
    "float in (0, 1)",
    "{fast|slow}",
  ]);
  assert.deepEqual(helpEntry(rate), [
    "  --rate <float in (0, 1)>  (default: 0.5; TRL ≥ 0.9)",
    "      a rate in (0, 1)",
  ]);
  assert.deepEqual(helpEntry(flag)[0], "  --flag <bool>  (default: unset; TRL ≥ 0.9, < 0.29)");
});

Deno.test("nearestKey: case- and separator-insensitive, nothing when nothing is close", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(nearestKey("LEARNING-RATE", ["learning_rate", "seed"]), "learning_rate");
  assert.equal(nearestKey("learningRte", ["learningRate", "learning_rate"]), "learningRate");
  assert.equal(nearestKey("zzzz", ["beta", "seed"]), null);
});
