/**
 * The one shared WebGPU device: acquired lazily by `init()`, with the adapter's own maxima requested for the
 * limits that matter to tensor work, and the optional features recorded.
 */
import { host } from "../io/platform.ts";
import { DeviceLostError, INSTALL_HINT, NotInitializedError, WebGPUUnavailableError } from "./errors.ts";

/** What the runtime knows about the device it runs on. */
export interface GpuInfo {
  /** A human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100". */
  adapterName: string;
  vendor: string;
  architecture: string;
  isFallbackAdapter: boolean;
  features: {
    shaderF16: boolean;
    timestampQuery: boolean;
    subgroups: boolean;
  };
  /** The adapter's subgroup sizes (0 without the "subgroups" feature or when the adapter does not say). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  /**
   * Whether this runtime's WGSL compiler wants `enable subgroups;` before a shader uses subgroup builtins (Tint
   * does; the naga of Deno 2.9 rejects the directive and takes the builtins without it).
   */
  subgroupsDirective: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    minUniformBufferOffsetAlignment: number;
    minStorageBufferOffsetAlignment: number;
  };
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: GpuInfo;
}

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;
let lostReason: string | null = null;

/** Options for `init()`. */
export interface InitOptions {
  /** Ask for a low-power or high-performance adapter. */
  powerPreference?: GPUPowerPreference;
}

/** Acquires the shared device (once). Safe to call many times; later calls return the same device. */
export function acquireDevice(opts: InitOptions = {}): Promise<Gpu> {
  if (current) return Promise.resolve(current);
  if (!pending) pending = requestGpu(opts).finally(() => (pending = null));
  return pending;
}

async function requestGpu(opts: InitOptions): Promise<Gpu> {
  // Deno on Linux: a quiet Mesa and wgpu's Vulkan backend alone (see src/io/deno.ts); nothing in a browser
  const backendNote = host().prepareWebGpu();
  const nav = globalThis.navigator as Navigator & { gpu?: GPU };
  if (!nav?.gpu) {
    throw new WebGPUUnavailableError(`this runtime has no navigator.gpu (WebGPU). ${INSTALL_HINT}`);
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await nav.gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  } catch (e) {
    throw new WebGPUUnavailableError(`requesting a WebGPU adapter failed (${String(e)}). ${INSTALL_HINT}`);
  }
  if (!adapter) {
    const tried = backendNote ? ` ${backendNote}` : "";
    throw new WebGPUUnavailableError(`no WebGPU adapter was found.${tried} ${INSTALL_HINT}`);
  }

  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
  };
  const wanted: GPUFeatureName[] = ["shader-f16", "timestamp-query", "subgroups" as GPUFeatureName];
  const requiredFeatures = wanted.filter((f) => adapter!.features.has(f));
  let device: GPUDevice;
  try {
    device = await requestWithSubgroups(adapter, requiredFeatures, requiredLimits);
  } catch (e) {
    throw new WebGPUUnavailableError(`the WebGPU adapter refused a device (${String(e)}). ${INSTALL_HINT}`);
  }
  const ai = adapter.info;
  const subgroups = device.features.has("subgroups" as GPUFeatureName);
  const d = device.limits;
  const info: GpuInfo = {
    adapterName: ai.description || [ai.vendor, ai.architecture, ai.device].filter(Boolean).join(" ") ||
      "unknown adapter",
    vendor: ai.vendor,
    architecture: ai.architecture,
    isFallbackAdapter: Boolean((ai as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features: {
      shaderF16: device.features.has("shader-f16"),
      timestampQuery: device.features.has("timestamp-query"),
      subgroups,
    },
    subgroupMinSize: subgroups ? subgroupSize(ai, "subgroupMinSize") : 0,
    subgroupMaxSize: subgroups ? subgroupSize(ai, "subgroupMaxSize") : 0,
    subgroupsDirective: subgroups && await compilesEnableSubgroups(device),
    limits: {
      maxStorageBufferBindingSize: d.maxStorageBufferBindingSize,
      maxBufferSize: d.maxBufferSize,
      maxStorageBuffersPerShaderStage: d.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: d.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: d.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: d.maxComputeWorkgroupsPerDimension,
      minUniformBufferOffsetAlignment: d.minUniformBufferOffsetAlignment,
      minStorageBufferOffsetAlignment: d.minStorageBufferOffsetAlignment,
    },
  };
  device.lost.then((l) => {
    if (current?.device === device) {
      lostReason = describeLoss(l);
      current = null;
    }
  });
  lostReason = null;
  current = { device, adapter, info };
  return current;
}

/**
 * Requests the device with the features wanted, adding "subgroups" when the adapter does not list it: Deno 2.9's
 * adapter leaves it out of `features` on lavapipe yet grants it. A refusal of that extra request falls back to
 * the listed features.
 */
async function requestWithSubgroups(
  adapter: GPUAdapter,
  features: GPUFeatureName[],
  requiredLimits: Record<string, number>,
): Promise<GPUDevice> {
  const sg = "subgroups" as GPUFeatureName;
  if (!features.includes(sg)) {
    try {
      return await adapter.requestDevice({ requiredFeatures: [...features, sg], requiredLimits });
    } catch {
      // not granted: the listed features alone
    }
  }
  return await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
}

function subgroupSize(info: GPUAdapterInfo, key: "subgroupMinSize" | "subgroupMaxSize"): number {
  const v = (info as unknown as Record<string, unknown>)[key];
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** Whether `enable subgroups;` compiles on this device (see GpuInfo.subgroupsDirective). */
async function compilesEnableSubgroups(device: GPUDevice): Promise<boolean> {
  device.pushErrorScope("validation");
  const mod = device.createShaderModule({
    code: "enable subgroups;\n@compute @workgroup_size(1) fn main() {}\n",
  });
  const info = await mod.getCompilationInfo();
  const scoped = await device.popErrorScope();
  return scoped === null && !info.messages.some((m) => m.type === "error");
}

/** The device, synchronously. Throws when `init()` has not completed or the device was lost. */
export function gpu(): Gpu {
  if (current) return current;
  if (lostReason !== null) {
    throw new DeviceLostError(
      `the WebGPU device was lost (${lostReason}); every tensor on it is gone. Call \`await init()\` to start again.`,
    );
  }
  throw new NotInitializedError(
    "the WebGPU runtime is not initialised: call `await init()` first (loadModel and DPOTrainer do it for you).",
  );
}

let cpuKernelsOverride: boolean | null = null;

/**
 * Whether kernels that have a CPU variant (a row per invocation, no barriers) should take it: by default when the
 * device runs on the CPU (lavapipe/llvmpipe, SwiftShader, or an adapter that says it is a fallback), where each
 * invocation is one SIMD lane and every workgroup and barrier costs; `setCpuKernels` overrides the choice.
 */
export function cpuKernels(): boolean {
  return cpuKernelsOverride ?? isCpuAdapter(gpu().info);
}

/** Whether an adapter runs on the CPU: lavapipe/llvmpipe, SwiftShader, or one that says it is a fallback. */
export function isCpuAdapter(info: { adapterName: string; isFallbackAdapter: boolean }): boolean {
  return info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(info.adapterName);
}

/**
 * Whether the device has the "subgroups" feature with subgroups of at least 8 lanes, so that a workgroup of 8
 * invocations is one subgroup (or inside one): what the kernels that share loads across a subgroup of a CPU
 * adapter's SIMD lanes assume (matmul_subgroup).
 */
export function hasSubgroupsOf8(
  info: { features?: { subgroups: boolean }; subgroupMinSize?: number },
): boolean {
  return info.features?.subgroups === true && (info.subgroupMinSize ?? 0) >= 8;
}

/** Forces the CPU (true) or GPU (false) kernel variants, or restores the adapter's choice (null): for tests. */
export function setCpuKernels(value: boolean | null): void {
  cpuKernelsOverride = value;
}

/** The device if one is held, else null. */
export function gpuOrNull(): Gpu | null {
  return current;
}

/** Why the device was lost, or null. */
export function deviceLostReason(): string | null {
  return lostReason;
}

/** A loss's reason and message, e.g. "destroyed: device was lost". */
function describeLoss(info: GPUDeviceLostInfo): string {
  return `${info.reason ?? "unknown"}${info.message ? `: ${info.message}` : ""}`;
}

/**
 * Why `device` was lost, or null if it is not: waits up to `waitMs` for `device.lost` to settle, since WebGPU can
 * report a loss first as a failed operation (a readback's mapAsync rejects with "validation error occurred")
 * before `device.lost` does.
 */
export async function deviceLossReason(device: GPUDevice, waitMs: number): Promise<string | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), waitMs)));
  try {
    const info = await Promise.race([device.lost, timeout]);
    return info ? describeLoss(info) : null;
  } finally {
    clearTimeout(timer);
  }
}

/** Forgets the device (tests use this after destroying it). */
export function forgetDevice(): void {
  current = null;
}
