/**
 * Files in a browser. Paths are mapped onto mounts, the longest matching prefix first:
 *
 * - a URL (a string): read-only, each read a `fetch`; a range read asks for `Range: bytes=…` and, when the server
 *   answers with the whole file instead (a server without range support), keeps that response as one Blob (which
 *   the browser holds on disk when large) and slices it. HTTP has no folders: the mounted address is a folder,
 *   a path below it is a file when a HEAD request finds it, and listing is refused;
 * - a `FileSystemDirectoryHandle`: a folder the user picked (`showDirectoryPicker`) or the Origin Private File
 *   System (`navigator.storage.getDirectory()`, see `opfsRoot`), read and written: writes go through
 *   `createWritable`, whose data replaces the file only when closed, so a write is atomic;
 * - a `File` or `Blob`: one file the user picked (an `<input type="file">`), read-only.
 *
 * A path above mounts is a folder whose entries are the mounts below it (picked files mounted one by one at
 * `/picked/config.json`, `/picked/model.safetensors`, … make a folder `/picked`). A path under no mount is
 * fetched relative to `base` (by default the page's address). Nothing here copies a
 * whole large file into memory when a stream or a range read was asked for. Folder renames move entries one by
 * one (`FileSystemHandle.move` where the browser has it, else a copy then a removal), so unlike Deno's they are
 * not atomic: a checkpoint save cut short in a tab can leave a half-moved folder, which resume skips as
 * incomplete.
 *
 * @module
 */
import { consoleSink } from "./sink.ts";
import { browserHost } from "./browser_host.ts";
import {
  type DirEntry,
  FileNotFoundError,
  type Files,
  type FileStat,
  type FileWriter,
  NotADirectoryError,
  type Platform,
  type RandomAccessFile,
} from "./types.ts";

/** The part of `FileSystemWritableFileStream` webdpo uses. */
export interface WritableFileLike {
  write(data: Uint8Array | string): Promise<void>;
  seek(position: number): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

/** The part of `FileSystemFileHandle` webdpo uses. */
export interface FileHandleLike {
  readonly kind: "file";
  readonly name: string;
  getFile(): Promise<Blob>;
  createWritable(options?: { keepExistingData?: boolean }): Promise<WritableFileLike>;
  move?(parent: DirectoryHandleLike, name: string): Promise<void>;
}

/** The part of `FileSystemDirectoryHandle` webdpo uses. */
export interface DirectoryHandleLike {
  readonly kind: "directory";
  readonly name: string;
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<DirectoryHandleLike>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandleLike>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  entries(): AsyncIterable<[string, FileHandleLike | DirectoryHandleLike]>;
  move?(parent: DirectoryHandleLike, name: string): Promise<void>;
}

/** What a path can be mounted on: a URL (read-only), a folder handle, or one picked file. */
export type Mount = string | URL | DirectoryHandleLike | Blob;

export interface BrowserFilesOptions {
  /** Path prefix → what it is (e.g. `{ "/model": pickedFolder, "/out": await opfsRoot() }`). */
  mounts?: Record<string, Mount>;
  /** Where paths under no mount are fetched from (default: the page's address; none outside a page). */
  base?: string | URL;
}

/** The Origin Private File System's root folder (outputs and checkpoints of a page). */
export async function opfsRoot(): Promise<DirectoryHandleLike> {
  const storage =
    (globalThis.navigator as { storage?: { getDirectory?: () => Promise<unknown> } } | undefined)
      ?.storage;
  if (!storage?.getDirectory) {
    throw new Error("this browser has no Origin Private File System (navigator.storage.getDirectory)");
  }
  return await storage.getDirectory() as DirectoryHandleLike;
}

/** `path` with `.` and empty parts dropped and `..` applied, as parts. */
function partsOf(path: string): string[] {
  const out: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") out.pop();
    else out.push(p);
  }
  return out;
}

/** One backend's view of paths below its mount (parts relative to it; `full` is the path for messages). */
interface Backend {
  stat(parts: string[], full: string): Promise<FileStat | null>;
  blob(parts: string[], full: string): Promise<Blob>;
  stream(parts: string[], full: string): Promise<ReadableStream<Uint8Array>>;
  open(parts: string[], full: string): Promise<RandomAccessFile>;
  list(parts: string[], full: string): Promise<DirEntry[]>;
  writable?: DirectoryBackend;
}

function blobFile(blob: Blob, full: string): RandomAccessFile {
  return {
    size: blob.size,
    async read(position, length) {
      if (position + length > blob.size) {
        throw new RangeError(`${full}: unexpected end of file at byte ${blob.size}`);
      }
      return new Uint8Array(await blob.slice(position, position + length).arrayBuffer());
    },
    close: () => Promise.resolve(),
  };
}

const notFound = (full: string) => new FileNotFoundError(`${full}: no such file or folder`);
const readOnly = (full: string) =>
  new Error(
    `${full}: this path is read-only in a browser (mount a folder handle or opfsRoot() to write there)`,
  );

/** A URL prefix, read with fetch. */
class UrlBackend implements Backend {
  constructor(private readonly base: URL) {}

  private url(parts: string[]): URL {
    const b = this.base.href.endsWith("/") ? this.base : new URL(this.base.href + "/");
    return parts.length ? new URL(parts.map(encodeURIComponent).join("/"), b) : this.base;
  }

  private async get(parts: string[], full: string, init?: RequestInit): Promise<Response> {
    const res = await fetch(this.url(parts), init);
    if (res.status === 404) {
      await res.body?.cancel();
      throw notFound(full);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`${full}: the server answered ${res.status} ${res.statusText} for ${this.url(parts)}`);
    }
    return res;
  }

  async stat(parts: string[], full: string): Promise<FileStat | null> {
    // HTTP has no folders: the mounted address itself is one, by declaration; below it, files are asked for
    if (!parts.length) return { isFile: false, isDirectory: true, size: 0 };
    try {
      let res = await fetch(this.url(parts), { method: "HEAD" });
      if (res.status === 405 || res.status === 501) {
        // a server without HEAD: the first byte, whose answer says the size
        res = await fetch(this.url(parts), { headers: { Range: "bytes=0-0" } });
        await res.body?.cancel();
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`${full}: the server answered ${res.status} ${res.statusText}`);
      const total = /\/(\d+)\s*$/.exec(res.headers.get("content-range") ?? "")?.[1];
      const size = Number(total ?? res.headers.get("content-length") ?? 0);
      return { isFile: true, isDirectory: false, size };
    } catch (e) {
      if (e instanceof FileNotFoundError) return null;
      throw e;
    }
  }

  async blob(parts: string[], full: string): Promise<Blob> {
    return await (await this.get(parts, full)).blob();
  }

  async stream(parts: string[], full: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.get(parts, full);
    return res.body ?? new Blob([]).stream();
  }

  async open(parts: string[], full: string): Promise<RandomAccessFile> {
    const res = await this.get(parts, full, { headers: { Range: "bytes=0-0" } });
    const total = /\/(\d+)\s*$/.exec(res.headers.get("content-range") ?? "")?.[1];
    if (res.status !== 206 || total === undefined) return blobFile(await res.blob(), full); // no range support
    await res.body?.cancel();
    const size = Number(total);
    return {
      size,
      read: async (position, length) => {
        if (position + length > size) throw new RangeError(`${full}: unexpected end of file at byte ${size}`);
        if (length === 0) return new Uint8Array(0);
        const r = await this.get(parts, full, {
          headers: { Range: `bytes=${position}-${position + length - 1}` },
        });
        const bytes = new Uint8Array(await r.arrayBuffer());
        if (r.status === 206 && bytes.length === length) return bytes;
        if (r.status === 200 && bytes.length === size) return bytes.slice(position, position + length);
        throw new RangeError(
          `${full}: asked for ${length} bytes at ${position}, the server sent ${bytes.length}`,
        );
      },
      close: () => Promise.resolve(),
    };
  }

  list(_parts: string[], full: string): Promise<DirEntry[]> {
    return Promise.reject(
      new Error(`${full}: a folder served over HTTP cannot be listed; name its files, or pick the folder`),
    );
  }
}

/** One picked file (File or Blob), at exactly its mount path. */
class BlobBackend implements Backend {
  constructor(private readonly file: Blob) {}
  private check(parts: string[], full: string): Blob {
    if (parts.length) throw notFound(full);
    return this.file;
  }
  stat(parts: string[]): Promise<FileStat | null> {
    return Promise.resolve(parts.length ? null : { isFile: true, isDirectory: false, size: this.file.size });
  }
  blob(parts: string[], full: string): Promise<Blob> {
    return Promise.resolve(this.check(parts, full));
  }
  stream(parts: string[], full: string): Promise<ReadableStream<Uint8Array>> {
    return Promise.resolve(this.check(parts, full).stream());
  }
  open(parts: string[], full: string): Promise<RandomAccessFile> {
    return Promise.resolve(blobFile(this.check(parts, full), full));
  }
  list(_parts: string[], full: string): Promise<DirEntry[]> {
    return Promise.reject(new NotADirectoryError(`${full}: a file, not a folder`));
  }
}

/** DOMExceptions of the file system API as the errors the seam promises. */
function mapError(e: unknown, full: string): unknown {
  const name = e instanceof Error || e instanceof DOMException ? e.name : "";
  if (name === "NotFoundError") return notFound(full);
  if (name === "TypeMismatchError") {
    return new NotADirectoryError(`${full}: a file where a folder was expected`);
  }
  return e;
}

/** A folder handle (a picked folder, or the Origin Private File System), read and written. */
class DirectoryBackend implements Backend {
  writable = this;
  constructor(readonly root: DirectoryHandleLike) {}

  async dir(parts: string[], full: string, create = false): Promise<DirectoryHandleLike> {
    let d = this.root;
    try {
      for (const p of parts) d = await d.getDirectoryHandle(p, { create });
    } catch (e) {
      throw mapError(e, full);
    }
    return d;
  }

  async file(parts: string[], full: string, create = false): Promise<FileHandleLike> {
    if (!parts.length) throw new Error(`${full}: a folder, not a file`);
    const d = await this.dir(parts.slice(0, -1), full);
    try {
      return await d.getFileHandle(parts[parts.length - 1], { create });
    } catch (e) {
      throw mapError(e, full);
    }
  }

  /** The handle at `parts`, file or folder, or null. */
  async handle(parts: string[], full: string): Promise<FileHandleLike | DirectoryHandleLike | null> {
    if (!parts.length) return this.root;
    let parent: DirectoryHandleLike;
    try {
      parent = await this.dir(parts.slice(0, -1), full);
    } catch (e) {
      if (e instanceof FileNotFoundError || e instanceof NotADirectoryError) return null;
      throw e;
    }
    const name = parts[parts.length - 1];
    for (const get of [() => parent.getFileHandle(name), () => parent.getDirectoryHandle(name)]) {
      try {
        return await get();
      } catch (e) {
        const m = mapError(e, full);
        if (!(m instanceof FileNotFoundError || m instanceof NotADirectoryError)) throw m;
      }
    }
    return null;
  }

  async stat(parts: string[], full: string): Promise<FileStat | null> {
    const h = await this.handle(parts, full);
    if (!h) return null;
    if (h.kind === "directory") return { isFile: false, isDirectory: true, size: 0 };
    return { isFile: true, isDirectory: false, size: (await h.getFile()).size };
  }

  async blob(parts: string[], full: string): Promise<Blob> {
    return await (await this.file(parts, full)).getFile();
  }

  async stream(parts: string[], full: string): Promise<ReadableStream<Uint8Array>> {
    return (await this.blob(parts, full)).stream();
  }

  async open(parts: string[], full: string): Promise<RandomAccessFile> {
    return blobFile(await this.blob(parts, full), full);
  }

  async list(parts: string[], full: string): Promise<DirEntry[]> {
    const out: DirEntry[] = [];
    for await (const [name, h] of (await this.dir(parts, full)).entries()) {
      out.push({ name, isFile: h.kind === "file", isDirectory: h.kind === "directory", isSymlink: false });
    }
    return out;
  }

  async writer(parts: string[], full: string, append: boolean): Promise<WritableFileLike> {
    const f = await this.file(parts, full, true);
    const w = await f.createWritable({ keepExistingData: append });
    if (append) await w.seek((await f.getFile()).size);
    return w;
  }

  async remove(parts: string[], full: string): Promise<void> {
    if (!parts.length) throw new Error(`${full}: the mounted folder itself cannot be removed`);
    const parent = await this.dir(parts.slice(0, -1), full);
    try {
      await parent.removeEntry(parts[parts.length - 1], { recursive: true });
    } catch (e) {
      throw mapError(e, full);
    }
  }
}

/** Copies a file or folder between any two places (for renames a handle cannot move). */
async function copyTree(files: Files, from: string, to: string): Promise<void> {
  const s = await files.stat(from);
  if (!s) throw notFound(from);
  if (s.isDirectory) {
    await files.mkdir(to);
    for (const e of await files.list(from)) await copyTree(files, `${from}/${e.name}`, `${to}/${e.name}`);
    return;
  }
  const w = await files.create(to);
  try {
    const reader = (await files.stream(from)).getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) await w.write(r.value);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.close();
}

/** Files in a browser tab (or a worker): see the module comment. */
export function browserFiles(opts: BrowserFilesOptions = {}): Files {
  const mounts: [string[], Backend][] = Object.entries(opts.mounts ?? {}).map(([prefix, m]) => {
    const parts = partsOf(prefix);
    if (typeof m === "string" || m instanceof URL) return [parts, new UrlBackend(new URL(m, pageBase()))];
    if (m instanceof Blob) return [parts, new BlobBackend(m)];
    return [parts, new DirectoryBackend(m)];
  });
  mounts.sort((a, b) => b[0].length - a[0].length);
  const base = opts.base ?? pageBase();
  const fallback = base === undefined ? null : new UrlBackend(new URL(base));

  const resolve = (path: string): [Backend, string[]] => {
    const parts = partsOf(path);
    for (const [prefix, b] of mounts) {
      if (prefix.length <= parts.length && prefix.every((p, i) => parts[i] === p)) {
        return [b, parts.slice(prefix.length)];
      }
    }
    if (!fallback) {
      throw new FileNotFoundError(
        `${path}: no mount holds this path (browserFiles mounts: ${
          mounts.map(([p]) => "/" + p.join("/")).join(", ") || "none"
        })`,
      );
    }
    return [fallback, parts];
  };
  /** The names of the mounts directly below `path` when no mount holds it (a folder of mounts), else null. */
  const mountsBelow = (path: string): string[] | null => {
    const parts = partsOf(path);
    if (mounts.some(([prefix]) => prefix.length <= parts.length && prefix.every((p, i) => parts[i] === p))) {
      return null;
    }
    const below = mounts.filter(([prefix]) =>
      prefix.length > parts.length && parts.every((p, i) => prefix[i] === p)
    );
    return below.length ? [...new Set(below.map(([prefix]) => prefix[parts.length]))] : null;
  };
  const writable = (path: string): [DirectoryBackend, string[]] => {
    const [b, parts] = resolve(path);
    if (!b.writable) throw readOnly(path);
    return [b.writable, parts];
  };

  const files: Files = {
    async readText(path) {
      const [b, parts] = resolve(path);
      return await (await b.blob(parts, path)).text();
    },
    async readBytes(path) {
      const [b, parts] = resolve(path);
      return new Uint8Array(await (await b.blob(parts, path)).arrayBuffer());
    },
    stream(path) {
      const [b, parts] = resolve(path);
      return b.stream(parts, path);
    },
    open(path) {
      const [b, parts] = resolve(path);
      return b.open(parts, path);
    },
    stat(path) {
      if (mountsBelow(path)) return Promise.resolve({ isFile: false, isDirectory: true, size: 0 });
      const [b, parts] = resolve(path);
      return b.stat(parts, path);
    },
    async list(dir) {
      const names = mountsBelow(dir);
      if (names) {
        return await Promise.all(names.map(async (name) => {
          const s = await files.stat(`${dir}/${name}`);
          return { name, isFile: s?.isFile ?? false, isDirectory: s?.isDirectory ?? false, isSymlink: false };
        }));
      }
      const [b, parts] = resolve(dir);
      return await b.list(parts, dir);
    },
    realPath(path) {
      return Promise.resolve("/" + partsOf(path).join("/"));
    },
    async writeText(path, text) {
      const [b, parts] = writable(path);
      const w = await b.writer(parts, path, false);
      await w.write(text);
      await w.close();
    },
    async appendText(path, text) {
      const [b, parts] = writable(path);
      const w = await b.writer(parts, path, true);
      await w.write(text);
      await w.close();
    },
    async create(path): Promise<FileWriter> {
      const [b, parts] = writable(path);
      const w = await b.writer(parts, path, false);
      return { write: (bytes) => w.write(bytes), close: () => w.close(), abort: () => w.abort() };
    },
    async mkdir(path) {
      const [b, parts] = writable(path);
      await b.dir(parts, path, true);
    },
    remove(path) {
      const [b, parts] = writable(path);
      return b.remove(parts, path);
    },
    async rename(from, to) {
      const [src, fromParts] = writable(from);
      const [dst, toParts] = writable(to);
      const existing = await files.stat(to);
      if (existing?.isDirectory) throw new Error(`${to}: a folder of that name exists (rename ${from})`);
      if (existing) await dst.remove(toParts, to); // a file is replaced, as a rename under Deno replaces it
      const h = await src.handle(fromParts, from);
      if (!h) throw notFound(from);
      if (h.move && toParts.length) {
        try {
          await h.move(await dst.dir(toParts.slice(0, -1), to), toParts[toParts.length - 1]);
          return;
        } catch {
          // not supported for this kind of handle here: copy, then remove
        }
      }
      await copyTree(files, from, to);
      await src.remove(fromParts, from);
    },
    sync: () => Promise.resolve(), // a closed writable is already committed
  };
  return files;
}

function pageBase(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href;
}

/** The browser platform: `browserFiles(opts)`, the browser's host facts, the console. */
export function browserPlatform(opts: BrowserFilesOptions = {}): Platform {
  return { files: browserFiles(opts), host: browserHost, sink: consoleSink };
}
