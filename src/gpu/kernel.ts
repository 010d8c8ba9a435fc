/**
 * Kernel registry. Every WGSL file in kernels/ is declared once with `kernel("name.wgsl")` by the op that uses
 * it; `loadKernels()` (called by `init()`) fetches and compiles every declared file, so dispatching stays
 * synchronous. A compile error throws a KernelError naming the file, line and message.
 *
 * Shared code: a kernel names the files of kernels/common/ it needs in a header line
 * `// requires: common/a.wgsl, common/b.wgsl`; the registry compiles them, each once and in order, followed by
 * the kernel (see includes.ts). `source` is that concatenation, so the Params parser and binding scan see every
 * function; compile messages give `<file> line <n>` within the file the line came from.
 *
 * Binding convention, read from each file's declarations: `@group(0) @binding(0) var<uniform> p: Params` holds
 * the dispatch's scalar parameters (named at the call site; their layout is read from the struct, see params.ts);
 * bindings 1, 2, … are storage buffers, `var<storage, read>` or `var<storage, read_write>` (at most the device's
 * maxStorageBuffersPerShaderStage: 8 guaranteed), or rgba32float textures read with `textureLoad`
 * (`var name: texture_2d<f32>`).
 *
 * Optional features: a kernel that uses subgroup builtins says so in a header line `// enables: subgroups`. It is
 * compiled only on a device that has the "subgroups" feature, with `enable subgroups;` put in front of its first
 * line where the WGSL compiler wants the directive (GpuInfo.subgroupsDirective), so its line numbers stay; using
 * it elsewhere throws a KernelError. The op that dispatches it checks the feature first.
 */
import { gpu } from "./device.ts";
import { KernelError } from "./errors.ts";
import {
  locateLine,
  type ResolvedSource,
  resolveRequires,
  resolveRequiresAsync,
  type SourceSegment,
} from "./includes.ts";
import { layoutFor, type ParamLayout, parseWgslParams, type WgslParamsInfo } from "./params.ts";
import { KERNELS_DIR } from "./kernels_dir.ts";

export type BindingKind = "uniform" | "read-only-storage" | "storage" | "texture";

/** A WGSL file: its source, compiled module and declared bindings. */
export class Kernel {
  /** The compiled source: the shared files it requires, then the kernel file. */
  source: string | null = null;
  /** Where each file's lines lie in `source`. */
  segments: SourceSegment[] = [];
  module: GPUShaderModule | null = null;
  moduleDevice: GPUDevice | null = null;
  bindings: Map<number, BindingKind> = new Map();
  /** The source says `// enables: subgroups`. */
  needsSubgroups = false;
  private paramsInfo: WgslParamsInfo | null = null;
  private paramLayouts = new Map<string, ParamLayout>();
  constructor(
    readonly name: string,
    readonly url: URL | null,
    inlineSource?: string,
    shared?: Record<string, string>,
  ) {
    if (inlineSource !== undefined) {
      const r = resolveRequires(name, inlineSource, (path) => shared?.[path]);
      this.setSource(r.code, r.segments);
    }
  }

  /** Sets the (already concatenated) source; `segments` as resolveRequires gives them. */
  setSource(src: string, segments: SourceSegment[] = []): void {
    this.source = src;
    this.segments = segments;
    this.bindings.clear();
    this.paramsInfo = null;
    this.paramLayouts.clear();
    this.needsSubgroups = /^\/\/\s*enables:\s*subgroups\s*$/m.test(src);
    const re =
      /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s*<\s*(uniform|storage)\s*(?:,\s*(read_write|read)\s*)?>/g;
    for (const m of src.matchAll(re)) {
      const b = Number(m[1]);
      this.bindings.set(
        b,
        m[2] === "uniform" ? "uniform" : m[3] === "read_write" ? "storage" : "read-only-storage",
      );
    }
    const tex = /@group\(\s*0\s*\)\s*@binding\(\s*(\d+)\s*\)\s*var\s+\w+\s*:\s*texture_2d\s*<\s*f32\s*>/g;
    for (const m of src.matchAll(tex)) this.bindings.set(Number(m[1]), "texture");
  }

  /**
   * The layout of the `struct Params` (binding 0) that `entry` reads, parsed from the source once per kernel and
   * cached per entry point; throws a KernelError naming the kernel and entry point if it cannot be read.
   */
  paramLayout(entry = "main"): ParamLayout {
    const cached = this.paramLayouts.get(entry);
    if (cached) return cached;
    if (this.source === null) {
      throw new KernelError(
        this.name,
        "its WGSL source is not loaded; call `await init()` after importing the op.",
      );
    }
    this.paramsInfo ??= parseWgslParams(this.name, this.source);
    const layout = layoutFor(this.name, entry, this.paramsInfo);
    this.paramLayouts.set(entry, layout);
    return layout;
  }

  /** The compiled module on the current device. */
  shaderModule(): GPUShaderModule {
    const { device } = gpu();
    if (this.module && this.moduleDevice === device) return this.module;
    if (this.source === null) {
      throw new KernelError(
        this.name,
        "its WGSL source is not loaded; call `await init()` after importing the op.",
      );
    }
    let code = this.source;
    if (this.needsSubgroups) {
      const { info } = gpu();
      if (!info.features.subgroups) {
        throw new KernelError(
          this.name,
          `it uses subgroup operations and the device (${info.adapterName}) has no "subgroups" feature.`,
        );
      }
      if (info.subgroupsDirective) code = "enable subgroups; " + code;
    }
    this.module = device.createShaderModule({ label: this.name, code });
    this.moduleDevice = device;
    return this.module;
  }
}

const derived = new WeakMap<Kernel, Map<string, Kernel>>();

/**
 * A kernel made from `k`'s loaded source (its shared files already in) by `transform`, named `name`: unrolled loops
 * (unroll.ts), texture operands (autograd/ops/texture_operands.ts). Made once per (k, key); compiled on first use.
 */
export function derivedKernel(
  k: Kernel,
  key: string,
  name: string,
  transform: (source: string) => string,
): Kernel {
  if (k.source === null) {
    throw new KernelError(
      k.name,
      "its WGSL source is not loaded; call `await init()` after importing the op.",
    );
  }
  let byKey = derived.get(k);
  if (!byKey) derived.set(k, byKey = new Map());
  let d = byKey.get(key);
  if (!d) {
    d = new Kernel(name, null);
    d.setSource(transform(k.source));
    byKey.set(key, d);
  }
  return d;
}

const registry = new Map<string, Kernel>();

/** Declares (once) the kernel file `kernels/<file>`. */
export function kernel(file: string): Kernel {
  let k = registry.get(file);
  if (!k) {
    k = new Kernel(file, new URL(file, KERNELS_DIR));
    registry.set(file, k);
  }
  return k;
}

/**
 * A kernel from WGSL source text (tests, user kernels). Compiled by `compileKernel`. Files it requires
 * (`// requires: common/x.wgsl`) come from `shared`, keyed by that path.
 */
export function inlineKernel(name: string, source: string, shared?: Record<string, string>): Kernel {
  return new Kernel(name, null, source, shared);
}

const sharedTexts = new Map<string, Promise<string | undefined>>();

/** A shared file of kernels/ (e.g. "common/neg_inf.wgsl"), fetched once; undefined if it does not exist. */
function fetchShared(path: string, base: URL): Promise<string | undefined> {
  const url = new URL(path, base).href;
  let p = sharedTexts.get(url);
  if (!p) {
    p = (async () => {
      try {
        const res = await fetch(url);
        if (!res.ok) {
          await res.body?.cancel();
          return undefined;
        }
        return await res.text();
      } catch {
        return undefined;
      }
    })();
    sharedTexts.set(url, p);
  }
  return p;
}

/**
 * The source of `kernels/<file>` as the registry compiles it: the shared files it requires, then the file
 * (`base` defaults to this checkout's kernels/).
 */
export async function loadKernelSource(file: string, base: URL = KERNELS_DIR): Promise<ResolvedSource> {
  const url = new URL(file, base);
  const res = await fetch(url);
  if (!res.ok) {
    await res.body?.cancel();
    throw new KernelError(file, `cannot load ${url} (HTTP ${res.status})`);
  }
  return resolveRequiresAsync(file, await res.text(), (path) => fetchShared(path, base));
}

/** Compiles a kernel's module and throws a KernelError listing every compile error. */
export async function compileKernel(k: Kernel): Promise<void> {
  const mod = k.shaderModule();
  const info = await mod.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) {
    k.module = null;
    const text = errors.map((m) => `${locateLine(k.segments, m.lineNum)}:${m.linePos}: ${m.message.trim()}`)
      .join("\n");
    throw new KernelError(k.name, `WGSL compile error\n${text}`);
  }
}

/** Fetches and compiles every declared kernel not yet compiled on the current device. */
export async function loadKernels(): Promise<void> {
  const { device, info } = gpu();
  const todo = [...registry.values()].filter((k) => k.moduleDevice !== device);
  await Promise.all(todo.map(async (k) => {
    if (k.source === null) {
      const r = await loadKernelSource(k.name);
      k.setSource(r.code, r.segments);
    }
    if (k.needsSubgroups && !info.features.subgroups) return; // never dispatched on this device
    await compileKernel(k);
  }));
}

/** Every declared kernel (for diagnostics). */
export function declaredKernels(): string[] {
  return [...registry.keys()].sort();
}
