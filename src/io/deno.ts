/**
 * The Deno platform: files through Deno's file system API, the environment through `Deno.env`, `/proc/meminfo`
 * and SIGINT, progress bars on stderr. The only file of the library below src/cli that names the `Deno` global
 * (tests/io_seam_test.ts checks), and only inside functions, so importing it elsewhere costs nothing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { DirEntry, Files, FileStat, FileWriter, Host, Platform, RandomAccessFile } from "./types.ts";
import { consoleSink } from "./sink.ts";

async function readExactly(file: Deno.FsFile, position: number, length: number, path: string) {
  const buf = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) throw new RangeError(`${path}: unexpected end of file at byte ${position + got}`);
    got += n;
  }
  return buf;
}

async function openRandomAccess(path: string): Promise<RandomAccessFile> {
  const file = await Deno.open(path, { read: true });
  let size: number;
  try {
    size = (await file.stat()).size;
  } catch (e) {
    file.close();
    throw e;
  }
  // reads are serialised: each one seeks the shared file position
  let pending: Promise<unknown> = Promise.resolve();
  return {
    size,
    read(position, length) {
      const r = pending.then(() => readExactly(file, position, length, path));
      pending = r.catch(() => {});
      return r;
    },
    async close() {
      await pending;
      file.close();
    },
  };
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

function tempName(path: string): string {
  const i = path.lastIndexOf("/");
  const id = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `${path.slice(0, i + 1)}.${path.slice(i + 1)}.tmp-${id}`;
}

/** Files through Deno's file system API. */
export const denoFiles: Files = {
  readText: (path) => Deno.readTextFile(path),
  readBytes: (path) => Deno.readFile(path),
  async stream(path) {
    return (await Deno.open(path, { read: true })).readable;
  },
  open: openRandomAccess,
  async stat(path): Promise<FileStat | null> {
    try {
      const s = await Deno.stat(path);
      return { isFile: s.isFile, isDirectory: s.isDirectory, size: s.size };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  },
  async list(dir) {
    const out: DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) {
      out.push({ name: e.name, isFile: e.isFile, isDirectory: e.isDirectory, isSymlink: e.isSymlink });
    }
    return out;
  },
  realPath: (path) => Deno.realPath(path),
  async writeText(path, text) {
    const tmp = tempName(path);
    try {
      await Deno.writeTextFile(tmp, text);
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
  },
  appendText: (path, text) => Deno.writeTextFile(path, text, { append: true, create: true }),
  async create(path): Promise<FileWriter> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    let open = true;
    const close = () => {
      if (open) file.close();
      open = false;
    };
    return {
      write: (bytes) => writeAll(file, bytes),
      close: () => Promise.resolve(close()),
      abort: () => Promise.resolve(close()),
    };
  },
  mkdir: (path) => Deno.mkdir(path, { recursive: true }),
  remove: (path) => Deno.remove(path, { recursive: true }),
  rename: (from, to) => Deno.rename(from, to),
  async sync(path, directory) {
    let f: Deno.FsFile | null = null;
    try {
      f = await Deno.open(path, directory ? { read: true } : { read: true, write: true });
      await f.sync();
    } catch (e) {
      // folders cannot be opened for syncing on every platform; a file must be
      if (!directory) throw e;
    } finally {
      f?.close();
    }
  },
};

/**
 * Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on every start when the variable is unset
 * (containers, CI, ssh without a session). Pointing it at a private folder first keeps the output clean; nothing
 * is written there. Skipped where the environment or the file system may not be touched.
 */
function quietMesaRuntimeDir(): void {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = `/tmp/webdpo-runtime-${Deno.uid() ?? "user"}`;
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // no --allow-env / --allow-write: leave the driver's message as it is
  }
}

/** Where the Vulkan loader looks for installed drivers (ICD manifests) on Linux. */
const VULKAN_ICD_DIRS = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];

/**
 * On Linux, the WebGPU instance of Deno (wgpu) opens every backend by default: besides Vulkan it loads EGL and
 * Mesa's GL driver (swrast_dri.so, a second llvmpipe with its own use of LLVM) and X11 libraries. Their teardown
 * at process exit races with the threads still ending, and aborted about one run in twenty of a test suite
 * after every test had passed (glibc "corrupted size vs. prev_size in fastbins" in a thread's exit while the
 * main thread ran libEGL's destructor: bench/RESULTS.md, "The abort at exit"). With a Vulkan driver installed
 * (lavapipe included), webdpo asks for the Vulkan backend alone, so GL and EGL are never loaded. A value the
 * user set for `DENO_WEBGPU_BACKEND` (e.g. "gl") is kept, and without a Vulkan driver GL stays the fallback.
 * Must run before the first `requestAdapter` of the process (the instance reads the variable once).
 */
function preferVulkanBackend(): boolean {
  try {
    if (Deno.build.os !== "linux" || Deno.env.get("DENO_WEBGPU_BACKEND") !== undefined) return false;
    const listed = Deno.env.get("VK_DRIVER_FILES") ?? Deno.env.get("VK_ICD_FILENAMES");
    let found = listed !== undefined && listed !== "";
    for (const dir of VULKAN_ICD_DIRS) {
      if (found) break;
      try {
        for (const e of Deno.readDirSync(dir)) {
          if (e.name.endsWith(".json")) {
            found = true;
            break;
          }
        }
      } catch {
        // no such folder
      }
    }
    if (found) Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
    return found;
  } catch {
    // no --allow-env / --allow-read: leave the runtime's default
    return false;
  }
}

/** The environment of a Deno process. */
export const denoHost: Host = {
  name: "deno",
  env(name) {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined; // no --allow-env
    }
  },
  availableMemory() {
    try {
      const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null;
    }
  },
  onInterrupt(handler) {
    try {
      Deno.addSignalListener("SIGINT", handler);
    } catch {
      return null; // a platform without SIGINT (Windows allows only some signals)
    }
    return () => Deno.removeSignalListener("SIGINT", handler);
  },
  exit: (code) => Deno.exit(code),
  terminal: () => Deno.stderr,
  prepareWebGpu() {
    quietMesaRuntimeDir();
    return preferVulkanBackend()
      ? "webdpo asked for the Vulkan backend alone, as a Vulkan driver is installed; run with " +
        "DENO_WEBGPU_BACKEND=gl to try OpenGL instead."
      : "";
  },
  sha256() {
    const h = createHash("sha256");
    return { update: (bytes) => void h.update(bytes), hex: () => h.digest("hex") };
  },
};

/** Deno's platform: its file system, its process, and the console. */
export const denoPlatform: Platform = { files: denoFiles, host: denoHost, sink: consoleSink };
