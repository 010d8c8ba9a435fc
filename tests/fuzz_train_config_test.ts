/**
 * Fuzzes the configuration of `webdpo train`: examples/dpo.yaml damaged as text and as YAML values, generated YAML
 * (anchors and aliases, deep nesting, tags), and generated command lines of known and unknown flags.
 */
import fc from "fast-check";
import { stringify as yamlText } from "yaml";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { EDGE_STRINGS, edgeValue, mutatedBytes, mutatedJson } from "./fuzz_mutations.ts";
import { FIELDS } from "../src/dpo/config_table.ts";
import { parse as parseYaml } from "yaml";

const TARGETS = new URL("./fuzz_targets/train_config.ts", import.meta.url);
const EXAMPLE = await Deno.readFile(new URL("../examples/dpo.yaml", import.meta.url));
const EXAMPLE_VALUES = parseYaml(new TextDecoder().decode(EXAMPLE));
const encoder = new TextEncoder();

/** YAML documents that stress the parser: aliases that multiply, deep flow nesting, tags, odd scalars. */
const YAML_PIECES = [
  "a: &a [1, 2]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
  "beta: " + "[".repeat(10_000) + "]".repeat(10_000) + "\n",
  "beta: !!binary aGVsbG8=\n",
  "beta: !!timestamp 2001-12-14\n",
  "seed: 0x7fffffffffffffff\n",
  "beta: .nan\n",
  "beta: -.inf\n",
  "? [a, b]\n: 1\n",
  "<<: {beta: 0.2}\n",
  "beta: 0.1\nbeta: 0.2\n",
  "%YAML 1.1\n---\nbeta: 0.1\n",
  "---\nbeta: 0.1\n---\nseed: 1\n",
  "\t beta: 1\n",
  "beta: '\\u0000'\n",
];

const yamlCase = (bytes: Uint8Array) => ({ files: { "dpo.yaml": bytes }, args: { yaml: true, argv: [] } });

const FLAG_NAMES = FIELDS.map((f) => f.name);

/** A command line: known and unknown flags, with and without values, in both syntaxes. */
const argv = fc.array(
  fc.oneof(
    fc.tuple(
      fc.constantFrom(...FLAG_NAMES),
      fc.oneof(fc.constantFrom(...EDGE_STRINGS, "true", "1e-3", "a,b", "{}"), fc.string()),
    )
      .map(([k, v]) => [`--${k}`, v]),
    fc.tuple(fc.constantFrom(...FLAG_NAMES), fc.string()).map(([k, v]) => [`--${k}=${v}`]),
    fc.constantFrom(...FLAG_NAMES).map((k) => [`--${k.replace(/_/g, "-")}`]),
    fc.constantFrom(["--config"], ["-h"], ["--"], ["-x"], ["--=1"], ["--beta", "--seed"]),
    fc.string().map((s) => [s]),
  ),
  { maxLength: 6 },
).map((parts) => ["--model_name_or_path", "m", "--dataset_name", "d", "--output_dir", "o", ...parts.flat()]);

fuzzTests("fuzz train config", [
  fuzzStep("examples/dpo.yaml damaged as text", {
    module: TARGETS,
    target: "trainConfig",
    cases: mutatedBytes(EXAMPLE),
    request: yamlCase,
    names: /dpo\.yaml/,
    runs: 40,
  }),
  fuzzStep("examples/dpo.yaml with values replaced, and stress documents", {
    module: TARGETS,
    target: "trainConfig",
    cases: fc.oneof(
      mutatedJson(EXAMPLE_VALUES).map((v) => encoder.encode(yamlText(v, { aliasDuplicateObjects: false }))),
      fc.tuple(fc.constantFrom(...YAML_PIECES), fc.constantFrom(...FLAG_NAMES), edgeValue()).map((
        [piece, k, v],
      ) =>
        encoder.encode(`${yamlText(EXAMPLE_VALUES)}${yamlText({ [k]: v })}`.replace(/^beta:.*$/m, "") + piece)
      ),
    ),
    request: yamlCase,
    names: /dpo\.yaml/,
    runs: 50,
  }),
  fuzzStep("generated command lines", {
    module: TARGETS,
    target: "trainConfig",
    cases: argv,
    request: (args) => ({ files: {}, args: { yaml: false, argv: args } }),
    // a flag's error names the flag; a value's or a combination's, the key; --config's, the file
    names: /--|'[a-z_0-9]+'|[a-z_0-9\]] (must|cannot|is|lists|needs|has|and)\b|^[a-z_0-9]+: |the config file/,
    runs: 60,
  }),
]);
