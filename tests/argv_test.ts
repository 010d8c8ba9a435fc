/** The shared command-line parser (src/cli/argv.ts) of `webdpo data`, `webdpo generate`, the demo and make-tiny-model. */
import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "../src/cli/argv.ts";

const SPEC = {
  steps: { kind: "int" },
  beta: { kind: "number" },
  output_dir: { kind: "string", aliases: ["out"] },
  prompt: { kind: "string", multiple: true },
  data_only: { kind: "flag" },
} as const;

Deno.test("parseCommandLine: typed values, spellings, aliases, repeats, negative numbers, --help", () => {
  const a = parseCommandLine(
    ["--steps", "3", "--beta=-0.5", "--output-dir", "x", "--prompt", "a", "--prompt=b", "--data-only"],
    SPEC,
  );
  assert.deepEqual(a.values, { steps: 3, beta: -0.5, output_dir: "x", prompt: ["a", "b"], data_only: true });
  assert.equal(a.help, false);
  assert.deepEqual(parseCommandLine(["--out", "y", "--beta", "-2"], SPEC).values, {
    output_dir: "y",
    beta: -2,
  });
  assert.equal(parseCommandLine(["-h"], SPEC).help, true);
  assert.deepEqual(parseCommandLine(["f.jsonl", "--steps", "1"], SPEC, { positionals: true }).positionals, [
    "f.jsonl",
  ]);
});

Deno.test("parseCommandLine: each mistake is a UsageError naming the option", () => {
  const fails = (argv: string[], re: RegExp) =>
    assert.throws(
      () => parseCommandLine(argv, SPEC),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
    );
  fails(["--stesp", "3"], /^unknown option --stesp; did you mean --steps\? The options are --steps, --beta/);
  fails(["--zzzzzzzz"], /^unknown option --zzzzzzzz; the options are /);
  fails(["--steps", "2.5"], /^--steps must be an integer, got "2.5"$/);
  fails(["--beta", "abc"], /^--beta must be a number, got "abc"$/);
  fails(["--steps", ""], /^--steps must be an integer, got ""$/);
  fails(["--beta"], /^--beta needs a value$/);
  fails(["--output_dir", "--steps", "2"], /^--output_dir needs a value$/);
  fails(["stray"], /^unexpected argument "stray"$/);
});
