/**
 * Glob patterns as Hugging Face `datasets` resolves them (fsspec ≥ 2023.12, which follows Python's glob): `*`
 * matches within one path segment, `?` one character of a segment, `[abc]` / `[!abc]` a character class, and a
 * `**` segment any number of folders (none included). `**` inside a segment (`a**b`) is a plain `*`, as fsspec
 * reads it. Paths use `/`.
 *
 * @module
 */

/** Whether `pattern` holds glob characters (`*`, `?`, `[`): otherwise it names one path. */
export function hasMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;
const escape = (s: string) => s.replace(REGEX_SPECIAL, "\\$&");

/** One path segment's pattern (no `/`) as a regular expression source. */
function segmentSource(seg: string): string {
  let out = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === "*") {
      while (seg[i + 1] === "*") i++;
      out += "[^/]*";
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "[") {
      const end = seg.indexOf("]", i + 2); // a "]" right after "[" (or "[!") is a member of the class
      if (end < 0) {
        out += "\\[";
        continue;
      }
      let body = seg.slice(i + 1, end);
      const negate = body.startsWith("!");
      if (negate) body = body.slice(1);
      // keep ranges (a-z); escape what a JS class would read otherwise
      const members = body.replace(/[\\\]^[]/g, "\\$&");
      out += negate ? `[^/${members}]` : `[${members}]`;
      i = end;
    } else {
      out += escape(c);
    }
  }
  return out;
}

/** A glob pattern as an anchored regular expression over `/`-separated paths. */
export function globToRegExp(pattern: string): RegExp {
  const segs = pattern.split("/");
  let src = "";
  for (let k = 0; k < segs.length; k++) {
    const seg = segs[k];
    const last = k === segs.length - 1;
    if (seg === "**") {
      // any number of folders (a trailing ** also matches the files below)
      src += last ? (k === 0 ? ".*" : "(?:/.*)?") : (k === 0 ? "(?:[^/]+/)*" : "/(?:[^/]+/)*");
      continue;
    }
    const prev = segs[k - 1];
    if (k > 0 && prev !== "**") src += "/";
    src += segmentSource(seg);
  }
  return new RegExp(`^${src}$`);
}
