/**
 * `deno task bench [--filter NAME] [--quick] [--json]`: runs every family in bench/families/ (or those whose name
 * contains NAME), printing one JSON object per result line and then a human-readable table.
 */
import { parseArgs } from "node:util";
import { init } from "../mod.ts";
import type { BenchFamily, BenchResult } from "./harness.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    filter: { type: "string" },
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

const dir = new URL("./families/", import.meta.url);
const files: string[] = [];
for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".ts")) files.push(e.name);
files.sort();
const families: BenchFamily[] = [];
for (const f of files) families.push((await import(new URL(f, dir).href)).family as BenchFamily);

if (args.help) {
  console.log(`usage: deno task bench [--filter NAME] [--quick] [--json]
  --filter NAME  run only the families whose name contains NAME (${families.map((f) => f.name).join(", ")})
  --quick        small sizes and few iterations (a smoke run)
  --json         print only the JSON lines, no table`);
  Deno.exit(0);
}

const info = await init();
const results: BenchResult[] = [];
const chosen = families.filter((f) => !args.filter || f.name.includes(args.filter));
if (chosen.length === 0) {
  console.error(
    `no benchmark family matches "${args.filter}"; families: ${families.map((f) => f.name).join(", ")}`,
  );
  Deno.exit(2);
}
for (const fam of chosen) {
  await fam.run({
    quick: args.quick,
    emit(r) {
      const line = { ...r, adapter: r.adapter ?? info.adapterName };
      results.push(line);
      console.log(JSON.stringify(line));
    },
  });
}

if (!args.json) {
  const cols = [
    "bench",
    "variant",
    "m",
    "n",
    "k",
    "shape",
    "ms",
    "gflops",
    "gbps",
    "tokens_per_s",
    "peak_bytes",
  ];
  const present = cols.filter((c) => results.some((r) => r[c] !== undefined));
  const cell = (v: unknown) =>
    v === undefined
      ? ""
      : typeof v === "number"
      ? (Number.isInteger(v) ? String(v) : v.toFixed(2))
      : String(v);
  const rows = results.map((r) => present.map((c) => cell(r[c])));
  const width = present.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  console.log(`\nadapter: ${info.adapterName}`);
  console.log(present.map((c, i) => c.padEnd(width[i])).join("  "));
  console.log(width.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(r.map((v, i) => v.padEnd(width[i])).join("  "));
}
