/**
 * The table of docs/TRL_INTEROP.md: every key of a webdpo YAML with the TRL releases whose `trl dpo --config`
 * accepts it, generated from the `trl` column of src/dpo/config_table.ts. Print it with
 * `deno run src/cli/trl_keys.ts`; a test checks that the document holds exactly this text.
 *
 * @module
 */
import { trlText } from "../config/text.ts";
import { FIELDS, type FieldSpec } from "../dpo/config_table.ts";

const SECTION: Record<FieldSpec["group"], string> = { script: "script", dpo: "DPO", training: "training" };

/** Where TRL accepts the key, as a table cell. */
export function trlAvailability(f: FieldSpec): string {
  return f.trl === null ? "**webdpo-only**" : trlText(f.trl);
}

function table(fields: readonly FieldSpec[]): string[] {
  const rows = [
    ["key", "section", "`trl dpo --config` accepts it in"],
    ...fields.map((f) => [`\`${f.name}\``, SECTION[f.group], trlAvailability(f)]),
  ];
  // aligned as `deno fmt` aligns markdown tables
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => [...r[c]].length)));
  const line = (r: string[]) =>
    `| ${r.map((cell, c) => cell + " ".repeat(widths[c] - [...cell].length)).join(" | ")} |`;
  return [line(rows[0]), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.slice(1).map(line)];
}

/**
 * Two markdown tables: the keys that not every TRL release from 0.9 on accepts (webdpo-only, added later or
 * removed later), then every key, both in `webdpo train --help` order.
 */
export function trlKeyTable(): string {
  const all = FIELDS;
  const special = all.filter((f) => f.trl === null || f.trl.until !== undefined || f.trl.since !== "0.9");
  return [
    `Keys to check against your TRL release (${special.length} of ${all.length}):`,
    "",
    ...table(special),
    "",
    `Every key (${all.length}):`,
    "",
    ...table(all),
  ].join("\n");
}

if (import.meta.main) console.log(trlKeyTable());
