/**
 * An in-memory stand-in for the browser's FileSystemDirectoryHandle / FileSystemFileHandle (the parts
 * src/io/browser.ts uses), with the browser's behaviour where it matters: DOMExceptions named NotFoundError and
 * TypeMismatchError, a writable whose data replaces the file only on close (abort discards it), removeEntry that
 * refuses a non-empty folder unless recursive. `move` exists only when asked for, so both rename paths run.
 */
import type { DirectoryHandleLike, FileHandleLike, WritableFileLike } from "../../src/io/browser.ts";

const notFound = (name: string) => new DOMException(`${name}: not found`, "NotFoundError");
const mismatch = (name: string) => new DOMException(`${name}: wrong kind`, "TypeMismatchError");

export class MemoryFile implements FileHandleLike {
  readonly kind = "file";
  data = new Uint8Array(0);
  /** Writables closed so far (a test can see that writes went through one). */
  commits = 0;
  constructor(public name: string, public parent: MemoryDir | null, private readonly canMove: boolean) {}

  getFile(): Promise<Blob> {
    return Promise.resolve(new File([this.data.slice()], this.name));
  }

  createWritable(options: { keepExistingData?: boolean } = {}): Promise<WritableFileLike> {
    let swap = options.keepExistingData ? this.data.slice() : new Uint8Array(0);
    let pos = 0;
    let done = false;
    const check = () => {
      if (done) throw new TypeError("the writable is closed");
    };
    return Promise.resolve({
      write: (d: Uint8Array | string) => {
        check();
        const bytes = typeof d === "string" ? new TextEncoder().encode(d) : d;
        if (pos + bytes.length > swap.length) {
          const grown = new Uint8Array(pos + bytes.length);
          grown.set(swap);
          swap = grown;
        }
        swap.set(bytes, pos);
        pos += bytes.length;
        return Promise.resolve();
      },
      seek: (p: number) => {
        check();
        pos = p;
        return Promise.resolve();
      },
      close: () => {
        check();
        done = true;
        this.data = swap;
        this.commits++;
        return Promise.resolve();
      },
      abort: () => {
        done = true;
        return Promise.resolve();
      },
    });
  }

  get move(): FileHandleLike["move"] {
    if (!this.canMove) return undefined;
    return (parent: DirectoryHandleLike, name: string) => moveEntry(this, parent as MemoryDir, name);
  }
}

export class MemoryDir implements DirectoryHandleLike {
  readonly kind = "directory";
  readonly children = new Map<string, MemoryFile | MemoryDir>();
  constructor(public name = "", public parent: MemoryDir | null = null, readonly canMove = false) {}

  getDirectoryHandle(name: string, options: { create?: boolean } = {}): Promise<DirectoryHandleLike> {
    const c = this.children.get(name);
    if (c instanceof MemoryFile) return Promise.reject(mismatch(name));
    if (c) return Promise.resolve(c);
    if (!options.create) return Promise.reject(notFound(name));
    const d = new MemoryDir(name, this, this.canMove);
    this.children.set(name, d);
    return Promise.resolve(d);
  }

  getFileHandle(name: string, options: { create?: boolean } = {}): Promise<FileHandleLike> {
    const c = this.children.get(name);
    if (c instanceof MemoryDir) return Promise.reject(mismatch(name));
    if (c) return Promise.resolve(c);
    if (!options.create) return Promise.reject(notFound(name));
    const f = new MemoryFile(name, this, this.canMove);
    this.children.set(name, f);
    return Promise.resolve(f);
  }

  removeEntry(name: string, options: { recursive?: boolean } = {}): Promise<void> {
    const c = this.children.get(name);
    if (!c) return Promise.reject(notFound(name));
    if (c instanceof MemoryDir && c.children.size && !options.recursive) {
      return Promise.reject(new DOMException(`${name}: not empty`, "InvalidModificationError"));
    }
    this.children.delete(name);
    return Promise.resolve();
  }

  async *entries(): AsyncIterable<[string, FileHandleLike | DirectoryHandleLike]> {
    for (const [name, c] of [...this.children]) yield [name, c];
  }

  get move(): DirectoryHandleLike["move"] {
    if (!this.canMove) return undefined;
    return (parent: DirectoryHandleLike, name: string) => moveEntry(this, parent as MemoryDir, name);
  }

  /** The sorted names of every file below, as paths (for assertions). */
  tree(prefix = ""): string[] {
    return [...this.children].flatMap(([n, c]) =>
      c instanceof MemoryDir ? c.tree(`${prefix}${n}/`) : [`${prefix}${n}`]
    ).sort();
  }
}

function moveEntry(e: MemoryFile | MemoryDir, to: MemoryDir, name: string): Promise<void> {
  if (to.children.has(name)) return Promise.reject(new DOMException(name, "InvalidModificationError"));
  e.parent?.children.delete(e.name);
  e.name = name;
  e.parent = to;
  to.children.set(name, e);
  return Promise.resolve();
}
