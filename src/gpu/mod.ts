/** The WebGPU runtime: device, kernels, buffer pool, dispatch and readback. */
export * from "./errors.ts";
export {
  cpuKernels,
  gpu,
  type GpuInfo,
  gpuOrNull,
  type InitOptions,
  isCpuAdapter,
  setCpuKernels,
} from "./device.ts";
export { init } from "./init.ts";
export { compileKernel, declaredKernels, inlineKernel, Kernel, kernel } from "./kernel.ts";
export {
  encodeParams,
  packParams,
  type ParamField,
  type ParamLayout,
  type ParamValue,
  type ParamValues,
  type ScalarKind,
} from "./params.ts";
export { type MemoryStats, memoryStats, resetPeakMemory } from "./pool.ts";
export {
  clearBuffer,
  copyBuffer,
  dispatch,
  dispatchCounter,
  type DispatchSpec,
  emptyCache,
  flush,
  grid1d,
  readback,
  sync,
  trimPool,
  upload,
} from "./queue.ts";
export {
  formatKernelProfile,
  type KernelTiming,
  ProfileError,
  startKernelProfile,
  stopKernelProfile,
} from "./profile.ts";
