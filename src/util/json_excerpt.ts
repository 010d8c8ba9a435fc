/** Values quoted in error messages. */

/**
 * A value as JSON text for an error message, cut to `max` characters. Safe for any parsed JSON: a value nested
 * too deeply for `String()` (which recurses) or too long to print whole still gives a short text.
 */
export function jsonExcerpt(v: unknown, max = 80): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > max ? s.slice(0, max - 3) + "..." : s;
}
