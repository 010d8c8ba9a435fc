/** Child process of backend_test.ts: initialises the GPU, prints the backend variable and the GL/EGL libraries mapped. */
import { init } from "../mod.ts";

const info = await init();
let gl: string[] = [];
try {
  const maps = Deno.readTextFileSync("/proc/self/maps");
  gl = [
    ...new Set([...maps.matchAll(/[^\s/]*(?:libEGL|swrast_dri|libGLX|libGL\.)[^\s/]*/g)].map((m) => m[0])),
  ];
} catch {
  // not Linux
}
console.log(
  JSON.stringify({ backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null, gl, adapter: info.adapterName }),
);
