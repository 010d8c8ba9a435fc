/**
 * The fuzz tests' driver: each property runs a parser on fast-check's cases in a `ParserSandbox` and requires that
 * every case ends in a valid result or in a WebDPOError whose message names the file (and the place), within a
 * time limit and without a large allocation.
 *
 * `deno task test` runs a fixed seed and a modest number of cases per property. `WEBDPO_FUZZ=long` (what
 * `deno task fuzz` sets) runs 80 times as many cases from a random seed (printed on failure; replay one with
 * `WEBDPO_FUZZ_SEED=<seed>`); `WEBDPO_FUZZ_RUNS=<n>` sets the number of cases of every property, and
 * `WEBDPO_FUZZ_DUMP=<folder>` writes a failing case's files there.
 */
import { AssertionError } from "node:assert/strict";
import fc from "fast-check";
import { type Outcome, ParserSandbox } from "./fuzz_sandbox.ts";

const LONG = Deno.env.get("WEBDPO_FUZZ") === "long";
const RUNS = Deno.env.get("WEBDPO_FUZZ_RUNS");
const SEED = Deno.env.get("WEBDPO_FUZZ_SEED");
const DUMP = Deno.env.get("WEBDPO_FUZZ_DUMP");

/** How many times the seeded subset's cases the long run makes. */
export const LONG_FACTOR = 80;

/** The seed of the seeded subset. */
export const FUZZ_SEED = 20_260_607;

/** A case taking longer than this is a hang. */
export const CASE_TIMEOUT_MS = 10_000;

/** A case leaving more than this allocated has allocated by a claimed size. */
export const MAX_MEMORY_GROWTH = 256 * 2 ** 20;

/** fast-check parameters for a property with `seeded` cases in the seeded subset. */
export function fuzzParameters(seeded: number): fc.Parameters<unknown> {
  const numRuns = RUNS !== undefined ? Number(RUNS) : LONG ? seeded * LONG_FACTOR : seeded;
  const seed = SEED !== undefined ? Number(SEED) : LONG ? Date.now() ^ (Math.random() * 2 ** 31) : FUZZ_SEED;
  return { numRuns, seed };
}

/** What one property runs and accepts. */
export interface ParserProperty<T> {
  /** The targets module (e.g. `new URL("./fuzz_targets/datasets.ts", import.meta.url)`). */
  module: URL;
  /** The exported target to run. */
  target: string;
  /** The cases. */
  cases: fc.Arbitrary<T>;
  /** The files (and target arguments) of a case. */
  request: (c: T) => { files: Record<string, Uint8Array>; args?: unknown };
  /** What a WebDPOError's message must contain: the file, and the place where that can be told. */
  names: RegExp | ((files: Record<string, Uint8Array>) => RegExp);
  /** Cases in the seeded subset. */
  runs: number;
}

function caseFailure(message: string): never {
  throw new AssertionError({ message });
}

/** Throws an AssertionError unless `o` is a result or a WebDPOError naming `names`, in time and memory. */
export function checkOutcome(o: Outcome, names: RegExp): void {
  if (o.kind === "timeout") caseFailure(`no answer within ${o.ms} ms (a hang)`);
  if (o.memoryGrowth > MAX_MEMORY_GROWTH) {
    caseFailure(
      `the case left ${
        (o.memoryGrowth / 2 ** 20).toFixed(0)
      } MiB allocated (an allocation by a claimed size)`,
    );
  }
  if (o.kind === "result") return;
  const message = o.message.length > 600 ? o.message.slice(0, 600) + "…" : o.message;
  if (!o.typed) {
    caseFailure(`unhandled ${o.name}: ${message}\n${o.stack.slice(o.stack.indexOf("\n    at "))}`);
  }
  if (!names.test(o.message)) caseFailure(`the ${o.name} "${message}" does not match ${names}`);
}

/** A short printable form of a case's files: each name, size and the start of its content. */
export function describeFiles(files: Record<string, Uint8Array>): string {
  return Object.entries(files).map(([name, bytes]) => {
    const head = Array.from(
      bytes.subarray(0, 240),
      (b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`,
    ).join("");
    return `${name} (${bytes.length} bytes): ${head}${bytes.length > 240 ? "…" : ""}`;
  }).join("\n");
}

/** Writes a failing case's files under $WEBDPO_FUZZ_DUMP, to turn into a regression test. */
async function dumpFiles(files: Record<string, Uint8Array>): Promise<void> {
  for (const [name, bytes] of Object.entries(files)) {
    const path = `${DUMP}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, bytes);
  }
  console.error(`fuzz: the failing case's files are in ${DUMP}`);
}

/** Runs a parser property in `sandbox`. */
export async function fuzzParser<T>(sandbox: ParserSandbox, p: ParserProperty<T>): Promise<void> {
  // printed as their files, not as the arbitrary's raw values
  const cases = p.cases.map((c) => {
    const req = p.request(c);
    return {
      ...req,
      [fc.toStringMethod]: () =>
        describeFiles(req.files) + (req.args === undefined ? "" : `\nargs: ${JSON.stringify(req.args)}`),
    };
  });
  const details = await fc.check(
    fc.asyncProperty(cases, async ({ files, args }) => {
      const outcome = await sandbox.run({ module: p.module.href, target: p.target, files, args });
      checkOutcome(outcome, typeof p.names === "function" ? p.names(files) : p.names);
    }),
    fuzzParameters(p.runs) as fc.Parameters<[unknown]>,
  );
  if (!details.failed) return;
  const counterexample = details.counterexample?.[0] as { files: Record<string, Uint8Array> } | undefined;
  if (counterexample && DUMP !== undefined) await dumpFiles(counterexample.files);
  throw new Error(fc.defaultReportMessage(details), { cause: details.errorInstance });
}

/** One step of `fuzzTests`: a named property. */
export interface FuzzStep {
  what: string;
  run: (sandbox: ParserSandbox) => Promise<void>;
}

/** A named property, as a step of `fuzzTests`. */
export function fuzzStep<T>(what: string, p: ParserProperty<T>): FuzzStep {
  return { what, run: (sandbox) => fuzzParser(sandbox, p) };
}

/**
 * Registers one Deno.test whose steps run the properties one after another in one sandbox (a file's properties
 * share one worker and its imports). Sanitizers are off: the worker's npm packages may leave timers behind.
 */
export function fuzzTests(name: string, steps: FuzzStep[]): void {
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false }, async (t) => {
    const sandbox = new ParserSandbox(CASE_TIMEOUT_MS);
    try {
      for (const step of steps) await t.step(step.what, () => step.run(sandbox));
    } finally {
      sandbox.close();
    }
  });
}
