/**
 * Every kernel in kernels/ compiles in real Chromium (Tint, the WGSL compiler of Chrome's WebGPU), and every
 * pipeline the ops build from it is created, with the override constants the ops pass (kernel_variants.ts).
 *
 * Two devices: one with WebGPU's default limits, the ones every adapter guarantees (256 invocations per
 * workgroup, 8 storage buffers per stage, 16 KiB of workgroup memory), where every kernel must build; and one
 * with the adapter's own maxima, as src/gpu/device.ts requests them, for the variants an op chooses from those
 * limits (attention's keys per tile). A file no device here can build (the optimizer's multi-tensor kernels need
 * 25 storage buffers; Chromium's adapter offers 10) is compiled only. Each pipeline's bind-group layout is the one src/gpu/queue.ts makes: a
 * uniform at binding 0 with a dynamic offset, then every storage binding the file declares.
 *
 * A file that says `// enables: subgroups` is compiled, with `enable subgroups;` in front as the registry puts it,
 * on devices that have the "subgroups" feature; where Chromium's adapter lacks it the step says so (the ops never
 * dispatch such a kernel there: matmul falls back to matmul_register.wgsl).
 *
 * One step per kernel file; a step fails listing every compile message and every pipeline error of its file.
 * Run with `deno task test:browser` (needs Debian's chromium; see tests/browser/chromium.ts).
 */
import assert from "node:assert/strict";
import { locateLine, type SourceSegment } from "../../src/gpu/includes.ts";
import { inlineKernel, loadKernelSource } from "../../src/gpu/kernel.ts";
import { openBrowser } from "./chromium.ts";
import { textureOperands } from "../../src/autograd/ops/texture_operands.ts";
import { kernelVariants, type PipelineVariant, type VariantLimits } from "./kernel_variants.ts";

const KERNELS = new URL("../../kernels/", import.meta.url);
/** Files whose texture-operand versions (src/autograd/ops/texture_operands.ts) are compiled too. */
const TEXTURED: [string, string[]][] = [["matmul_subgroup.wgsl", ["a", "b"]], ["attention_bwd.wgsl", [
  "q",
  "dout",
]]];

interface Job {
  file: string;
  code: string;
  /** [binding, kind] of every declared binding, as src/gpu/kernel.ts reads them. */
  bindings: [number, string][];
  /** Pipelines on the default-limits device. */
  pipelines: PipelineVariant[];
  /** Pipelines only the adapter-limits device builds (constants chosen from its larger limits). */
  adapterPipelines: PipelineVariant[];
  /** The file says `// enables: subgroups`. */
  subgroups: boolean;
}

interface JobResult {
  file: string;
  errors: string[];
  warnings: string[];
  /** Whether the module compiled (no error message from getCompilationInfo). */
  compiled: boolean;
  /** Not compiled: it needs the "subgroups" feature, which the adapter lacks. */
  noSubgroups: boolean;
  built: number;
  ms: number;
}

/** The `@compute` entry points of a WGSL source. */
function entryPoints(code: string): string[] {
  const noComments = code.replace(/\/\/[^\n]*/g, "");
  return [...noComments.matchAll(/@compute\s*(?:@workgroup_size\([^)]*\)\s*)?fn\s+(\w+)/g)].map((m) => m[1]);
}

const key = (p: PipelineVariant) => `${p.entry}${JSON.stringify(Object.entries(p.constants).sort())}`;

function jobFor(file: string, code: string, defaults: VariantLimits, adapter: VariantLimits): Job {
  const entries = entryPoints(code);
  const expand = (limits: VariantLimits): PipelineVariant[] => {
    const listed = kernelVariants(file, limits) ?? [];
    for (const p of listed) {
      assert.ok(
        entries.includes(p.entry),
        `kernel_variants.ts lists ${file}:${p.entry}, which is not an entry point`,
      );
    }
    // an empty list: the file builds no pipeline on a device with these limits
    if (kernelVariants(file, limits)?.length === 0) return [];
    const unlisted = entries.filter((e) => !listed.some((p) => p.entry === e));
    return [...listed, ...unlisted.map((entry) => ({ entry, constants: {} }))];
  };
  const pipelines = expand(defaults);
  const known = new Set(pipelines.map(key));
  const adapterPipelines = expand(adapter).filter((p) => !known.has(key(p)));
  const k = inlineKernel(file, code);
  const bindings = [...k.bindings.entries()].sort((a, b) => a[0] - b[0]);
  return { file, code, bindings, pipelines, adapterPipelines, subgroups: k.needsSubgroups };
}

/** Runs in the page: compiles each job's module and builds its pipelines on both devices. */
async function compileInPage(
  jobs: Job[],
): Promise<{ adapter: string; limits: Record<string, number>; results: JobResult[] } | string> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    return `navigator.gpu is missing (isSecureContext = ${
      (globalThis as { isSecureContext?: boolean }).isSecureContext
    })`;
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) return "navigator.gpu.requestAdapter() returned null";
  const al = adapter.limits;
  const sg = "subgroups" as GPUFeatureName;
  const requiredFeatures: GPUFeatureName[] = adapter.features.has(sg) ? [sg] : [];
  const guaranteed = await adapter.requestDevice({ requiredFeatures });
  // an adapter gives one device: the second comes from a second request
  const second = await gpu.requestAdapter();
  if (!second) return "a second navigator.gpu.requestAdapter() returned null";
  const maxed = await second.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
      maxBufferSize: al.maxBufferSize,
      maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: al.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: al.maxComputeWorkgroupsPerDimension,
    },
  });
  const describe = (p: PipelineVariant) => {
    const c = Object.entries(p.constants).map(([k, v]) => `${k}=${v}`).join(", ");
    return `${p.entry}${c ? ` {${c}}` : ""}`;
  };
  const results: JobResult[] = [];
  for (let job of jobs) {
    const errors: string[] = [];
    const warnings: string[] = [];
    let built = 0;
    const t0 = performance.now();
    if (job.subgroups) {
      if (requiredFeatures.length === 0) {
        results.push({ file: job.file, errors, warnings, compiled: false, noSubgroups: true, built, ms: 0 });
        continue;
      }
      // as the registry compiles it for Tint: the directive on the first line (line numbers unchanged)
      job = { ...job, code: "enable subgroups; " + job.code };
    }
    const sets: [GPUDevice, PipelineVariant[], string][] = [
      [guaranteed, job.pipelines, "default limits"],
      [maxed, job.adapterPipelines, "adapter limits"],
    ];
    if (job.pipelines.length + job.adapterPipelines.length === 0) {
      // a file for devices above this adapter's limits: compiled (Tint's checks), no pipeline built
      const module = guaranteed.createShaderModule({ label: job.file, code: job.code });
      for (const m of (await module.getCompilationInfo()).messages) {
        (m.type === "error" ? errors : warnings).push(`line ${m.lineNum}:${m.linePos}: ${m.message.trim()}`);
      }
    }
    let first = true;
    for (const [device, pipelines, label] of sets) {
      if (pipelines.length === 0) continue;
      const module = device.createShaderModule({ label: job.file, code: job.code });
      const info = await module.getCompilationInfo();
      // the messages of the first device that compiles the file (the second's are the same)
      if (first) {
        first = false;
        for (const m of info.messages) {
          const text = `line ${m.lineNum}:${m.linePos}: ${m.message.trim()}`;
          (m.type === "error" ? errors : warnings).push(text);
        }
      }
      if (info.messages.some((m) => m.type === "error")) break;
      device.pushErrorScope("validation");
      const layout = device.createPipelineLayout({
        bindGroupLayouts: [device.createBindGroupLayout({
          entries: job.bindings.map(([binding, type]) => ({
            binding,
            visibility: GPUShaderStage.COMPUTE,
            ...(type === "texture"
              ? { texture: { sampleType: "unfilterable-float" as GPUTextureSampleType } }
              : { buffer: { type: type as GPUBufferBindingType, hasDynamicOffset: binding === 0 } }),
          })),
        })],
      });
      const layoutError = await device.popErrorScope();
      if (layoutError) {
        errors.push(`bind-group layout (${label}): ${layoutError.message.trim()}`);
        continue;
      }
      await Promise.all(pipelines.map(async (p) => {
        try {
          await device.createComputePipelineAsync({
            label: `${job.file}:${p.entry}`,
            layout,
            compute: { module, entryPoint: p.entry, constants: p.constants },
          });
          built++;
        } catch (e) {
          errors.push(`pipeline ${describe(p)} (${label}): ${(e as Error).message.trim()}`);
        }
      }));
    }
    const compiled = !errors.some((e) => e.startsWith("line "));
    results.push({
      file: job.file,
      errors,
      warnings,
      compiled,
      noSubgroups: false,
      built,
      ms: performance.now() - t0,
    });
  }
  const limits = {
    maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
    maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
  };
  const ai = adapter.info;
  guaranteed.destroy();
  maxed.destroy();
  return { adapter: [ai.vendor, ai.architecture, ai.description].filter(Boolean).join(" "), limits, results };
}

Deno.test({
  name: "every kernel compiles and its pipelines build in Chromium (Tint)",
  // playwright-core's pipe to the browser and its timers stay open across the steps
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const files: string[] = [];
    for await (const e of Deno.readDir(KERNELS)) if (e.isFile && e.name.endsWith(".wgsl")) files.push(e.name);
    files.sort();
    assert.ok(files.length > 0, "kernels/ holds WGSL files");
    // WEBDPO_KERNELS=a.wgsl,b.wgsl compiles only those (while working on a kernel)
    const only = Deno.env.get("WEBDPO_KERNELS")?.split(",").map((f) => f.trim()).filter(Boolean);
    if (only?.length) {
      for (const f of only) {
        assert.ok(files.includes(f), `WEBDPO_KERNELS names ${f}, which is not in kernels/`);
      }
      files.splice(0, files.length, ...files.filter((f) => only.includes(f)));
    }
    const browser = await openBrowser();
    try {
      const limits = await browser.page.evaluate(async () => {
        const a = await (navigator as Navigator & { gpu?: GPU }).gpu?.requestAdapter();
        return a
          ? {
            maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
            maxStorageBuffersPerShaderStage: a.limits.maxStorageBuffersPerShaderStage,
          }
          : null;
      });
      assert.ok(limits !== null, `Chromium offers no WebGPU adapter\n${browser.console.join("\n")}`);
      // WebGPU's default limits
      const defaults = { maxComputeWorkgroupStorageSize: 16384, maxStorageBuffersPerShaderStage: 8 };
      const adapterLimits = {
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      };
      // each file as the registry compiles it: the shared files it requires (kernels/common/), then the file
      const segments = new Map<string, SourceSegment[]>();
      const jobs = await Promise.all(files.map(async (f) => {
        const src = await loadKernelSource(f, KERNELS);
        segments.set(f, src.segments);
        return jobFor(f, src.code, defaults, adapterLimits);
      }));
      // kernels made from a file's source at run time: llvmpipe's texture-operand kernels
      for (const [f, names] of TEXTURED) {
        if (!jobs.some((j) => j.file === f)) continue;
        const file = `${f} (texture operands ${names.join(", ")})`;
        segments.set(file, segments.get(f)!);
        const code = textureOperands((await loadKernelSource(f, KERNELS)).code, names);
        jobs.push({ ...jobFor(f, code, defaults, adapterLimits), file });
      }
      const out = await browser.page.evaluate(compileInPage, jobs);
      assert.ok(typeof out !== "string", `${out}\n${browser.console.join("\n")}`);
      const pipelines = jobs.reduce((n, j) => n + j.pipelines.length + j.adapterPipelines.length, 0);
      const built = out.results.reduce((n, r) => n + r.built, 0);
      const compiled = out.results.filter((r) => r.compiled).length;
      console.log(
        `Chromium ${out.adapter}: ${compiled} of ${jobs.length} kernels compile, ${built} of ${pipelines} ` +
          `pipelines build (adapter limits ${JSON.stringify(out.limits)})`,
      );
      for (const r of out.results) {
        await t.step(r.file, () => {
          if (r.noSubgroups) {
            console.log(
              `  ${r.file}: not compiled: it uses subgroups and this adapter has no "subgroups" feature`,
            );
            return;
          }
          console.log(
            `  ${r.file}: ${r.built} pipelines in ${(r.ms / 1000).toFixed(1)} s${
              r.built === 0 ? " (compiled only: it needs more than this adapter's limits)" : ""
            }`,
          );
          // "line N" of the concatenated source → the file (kernel or shared) and line it came from
          const at = (m: string) =>
            m.replace(/^line (\d+)/, (_, n) => locateLine(segments.get(r.file)!, Number(n)));
          for (const w of r.warnings) console.log(`  ${r.file} warning: ${at(w)}`);
          assert.ok(r.errors.length === 0, `${r.file}:\n  ${r.errors.map(at).join("\n  ")}`);
        });
      }
    } finally {
      await browser.close();
    }
  },
});
