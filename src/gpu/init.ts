/** `init()`: acquires the shared WebGPU device and compiles every declared kernel. */
import { acquireDevice, type GpuInfo, type InitOptions } from "./device.ts";
import { loadKernels } from "./kernel.ts";

/**
 * Acquires the shared WebGPU device (once) and compiles the kernels of every op imported so far.
 * Call it before creating tensors; loadModel and DPOTrainer call it for you. Returns the adapter's description.
 */
export async function init(opts: InitOptions = {}): Promise<GpuInfo> {
  const g = await acquireDevice(opts);
  await loadKernels();
  return g.info;
}
