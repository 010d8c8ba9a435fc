/** Typed errors raised by the WebGPU runtime. Each message says what happened and what to do. */

/** Base class of every error webdpo raises on purpose. */
export class WebDPOError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be obtained. */
export class WebGPUUnavailableError extends WebDPOError {}

/** A WGSL kernel failed to compile, or a pipeline/bind group/dispatch for it failed validation. */
export class KernelError extends WebDPOError {
  constructor(readonly kernel: string, detail: string) {
    super(`kernel ${kernel}: ${detail}`);
  }
}

/** The GPU device was lost (driver reset, out of memory, destroyed). */
export class DeviceLostError extends WebDPOError {}

/** A tensor or buffer exceeds a limit of the device (binding size, buffer size, workgroup count). */
export class GpuLimitError extends WebDPOError {}

/** The runtime was used before `await init()`. */
export class NotInitializedError extends WebDPOError {}

export const INSTALL_HINT =
  "webdpo needs a WebGPU adapter: any GPU through Vulkan, Metal or DX12, or the CPU through Mesa's lavapipe. " +
  "On a CPU-only Debian/Ubuntu machine run `apt-get install -y mesa-vulkan-drivers` (it provides lavapipe); " +
  "on a machine with a GPU, install its Vulkan driver.";
