/**
 * Shared WGSL code, by explicit inclusion. A kernel file names the shared files it needs in one header line,
 *
 *     // requires: common/neg_inf.wgsl, common/attention_range.wgsl
 *
 * among the comment lines that open the file (before its first line of code); the paths are relative to
 * kernels/ and name files in kernels/common/. A shared file may itself require others the same way. The
 * registry compiles the concatenation: every required file once, each after the files it requires, in the
 * order they are named, then the kernel itself. Nothing is substituted inside the code (no templating); a
 * shared file is ordinary WGSL that may use module-scope names the including kernel declares (`p`, bindings),
 * since WGSL module-scope declarations may appear in any order.
 *
 * Errors (KernelError, naming the kernel and the files involved): a required file that does not exist, a
 * cycle of requires, a malformed path, and a module-scope name (fn, const, override, var, struct, alias)
 * declared by two of the concatenated files.
 *
 * Line numbers: the concatenation keeps every file's lines as they are, one after another, and `segments`
 * records where each file starts, so `locateLine` turns a line of the concatenated source (as WGSL compile
 * messages give it) back into `<file> line <n>`.
 */
import { KernelError } from "./errors.ts";
import { stripWgslComments } from "./params.ts";

/** One file's place in a concatenated source: lines firstLine .. firstLine + lines - 1 (1-based). */
export interface SourceSegment {
  file: string;
  firstLine: number;
  lines: number;
}

/** A kernel's source with its shared files prepended. */
export interface ResolvedSource {
  code: string;
  /** Shared files first, in concatenation order; the kernel itself last. */
  segments: SourceSegment[];
}

const REQUIRES_LINE = /^\/\/\s*requires:(.*)$/;
const SHARED_PATH = /^common\/[A-Za-z0-9_.-]+\.wgsl$/;

/** The shared files a WGSL source requires (its `// requires:` header lines, in order), as written. */
export function requiredFiles(file: string, source: string): string[] {
  const out: string[] = [];
  for (const raw of source.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (!line.startsWith("//")) break; // the header ends at the first line of code
    const m = REQUIRES_LINE.exec(line);
    if (!m) continue;
    for (const part of m[1].split(",")) {
      const path = part.trim();
      if (path === "") continue;
      if (!SHARED_PATH.test(path)) {
        throw new KernelError(
          file,
          `requires "${path}": a shared file is named common/<name>.wgsl, relative to kernels/`,
        );
      }
      out.push(path);
    }
  }
  return out;
}

/** Module-scope names a WGSL source declares (fn, const, override, var, struct, alias), outside any braces. */
export function moduleScopeNames(source: string): string[] {
  const code = stripWgslComments(source);
  const names: string[] = [];
  let depth = 0;
  const tokens = /[{}]|\b(?:fn|const|override|struct|alias|var(?:\s*<[^>]*>)?)\s+(\w+)/g;
  for (const m of code.matchAll(tokens)) {
    if (m[0] === "{") depth++;
    else if (m[0] === "}") depth--;
    else if (depth === 0) names.push(m[1]);
  }
  return names;
}

function lineCount(text: string): number {
  return text.split("\n").length;
}

/**
 * Concatenates `source` (the kernel `file`) after the shared files it requires, recursively, each once.
 * `lookup(path)` gives a shared file's text, or undefined if there is no such file.
 */
export function resolveRequires(
  file: string,
  source: string,
  lookup: (path: string) => string | undefined,
): ResolvedSource {
  const order: { file: string; text: string }[] = [];
  const done = new Set<string>();
  const visit = (name: string, text: string, stack: string[]): void => {
    for (const req of requiredFiles(name, text)) {
      if (req === name || stack.includes(req)) {
        const chain = [...stack.slice(stack.indexOf(req) < 0 ? stack.length : stack.indexOf(req)), name, req];
        throw new KernelError(file, `cycle of requires: ${chain.join(" -> ")}`);
      }
      if (done.has(req)) continue;
      const shared = lookup(req);
      if (shared === undefined) {
        throw new KernelError(file, `${name} requires ${req}, which does not exist in kernels/`);
      }
      visit(req, shared, [...stack, name]);
    }
    done.add(name);
    order.push({ file: name, text });
  };
  visit(file, source, []);

  const declaredIn = new Map<string, string>();
  for (const part of order) {
    for (const n of new Set(moduleScopeNames(part.text))) {
      const first = declaredIn.get(n);
      if (first !== undefined) {
        throw new KernelError(
          file,
          `"${n}" is declared in both ${first} and ${part.file} (a file must not redeclare a name that a ` +
            `shared file it is compiled with declares)`,
        );
      }
      declaredIn.set(n, part.file);
    }
  }

  const segments: SourceSegment[] = [];
  const texts: string[] = [];
  let line = 1;
  for (const part of order) {
    const text = part.text.endsWith("\n") ? part.text.slice(0, -1) : part.text;
    const lines = lineCount(text);
    segments.push({ file: part.file, firstLine: line, lines });
    texts.push(text);
    line += lines;
  }
  return { code: texts.join("\n") + (source.endsWith("\n") ? "\n" : ""), segments };
}

/**
 * Resolves `file`'s requires, reading each shared file once through `fetchText` (undefined: no such file).
 */
export async function resolveRequiresAsync(
  file: string,
  source: string,
  fetchText: (path: string) => Promise<string | undefined>,
): Promise<ResolvedSource> {
  const texts = new Map<string, string | undefined>();
  const pending = [...requiredFiles(file, source)];
  while (pending.length > 0) {
    const path = pending.shift()!;
    if (texts.has(path)) continue;
    const text = await fetchText(path);
    texts.set(path, text);
    if (text !== undefined) pending.push(...requiredFiles(path, text));
  }
  return resolveRequires(file, source, (p) => texts.get(p));
}

/** `<file> line <n>` for line `lineNum` (1-based) of a concatenated source; `line <lineNum>` outside every segment. */
export function locateLine(segments: SourceSegment[], lineNum: number): string {
  for (const s of segments) {
    if (lineNum >= s.firstLine && lineNum < s.firstLine + s.lines) {
      return `${s.file} line ${lineNum - s.firstLine + 1}`;
    }
  }
  return `line ${lineNum}`;
}
