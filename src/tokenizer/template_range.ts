/**
 * `range()` in chat templates bounded as jinja2's sandbox bounds it (transformers renders chat templates in that
 * sandbox): at most 100,000 items. @huggingface/jinja's own `range` builds the whole list, so `range(100000000)` in
 * a template from a stranger ran the process out of memory. Its globals cannot be replaced at render time, so the
 * parsed template's uses of the name `range` are renamed to a variable the renderer passes.
 */
import type { Template } from "@huggingface/jinja";

/** jinja2.sandbox.MAX_RANGE. */
export const MAX_RANGE = 100_000;

/** The name a template's `range` is renamed to; pass `sandboxedRange` under it when rendering. */
export const SANDBOXED_RANGE = "__webdpo_sandboxed_range";

/** Python's range(stop) / range(start, stop[, step]) as a list, refusing more than MAX_RANGE items. */
export function sandboxedRange(start: number, stop?: number, step = 1): number[] {
  const [from, to] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0) throw new Error("range() step must not be zero");
  const n = Math.max(0, Math.ceil((to - from) / step));
  if (!(n <= MAX_RANGE)) {
    throw new Error(
      `range too big: the sandbox blocks ranges larger than ${MAX_RANGE} items (as jinja2's does)`,
    );
  }
  return Array.from({ length: n }, (_, i) => from + i * step);
}

type Node = { type?: unknown; value?: unknown; computed?: unknown; property?: unknown };

/** Renames every identifier `range` of a parsed template (not attribute names such as `x.range`). */
export function sandboxRange(template: Template): void {
  const visit = (v: unknown, isAttribute: boolean): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, false);
      return;
    }
    if (v === null || typeof v !== "object") return;
    const node = v as Node;
    if (node.type === "Identifier" && node.value === "range" && !isAttribute) node.value = SANDBOXED_RANGE;
    for (const [key, child] of Object.entries(node)) {
      visit(child, key === "property" && node.type === "MemberExpression" && node.computed === false);
    }
  };
  visit(template.parsed, false);
}
