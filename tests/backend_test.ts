/**
 * Backend choice on Linux: with a Vulkan driver installed, init() asks for Vulkan alone, so EGL and Mesa's GL
 * driver are never loaded (their teardown at exit aborted test runs now and then); a DENO_WEBGPU_BACKEND the user
 * set is kept, and the GL path still trains. Each case runs in a fresh process (the backend is chosen once).
 */
import assert from "node:assert/strict";

const CHILD = new URL("./backend_child.ts", import.meta.url).pathname;

async function child(
  env: Record<string, string>,
  { abortAtExitAllowed = false } = {},
): Promise<{ backend: string | null; gl: string[]; adapter: string }> {
  const clean = { ...Deno.env.toObject() };
  delete clean.DENO_WEBGPU_BACKEND;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD],
    env: { ...clean, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  // the GL path is the one whose teardown can abort at exit (see src/gpu/device.ts): there an abort after the
  // child printed its result is tolerated; everywhere else the exit must be clean
  const ok = out.code === 0 || (abortAtExitAllowed && out.signal === "SIGABRT" && text.includes("{"));
  assert.ok(ok, `child exited with ${out.code} (${out.signal}): ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.trim().split("\n").pop()!);
}

function hasVulkanDriver(): boolean {
  for (const dir of ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"]) {
    try {
      if ([...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".json"))) return true;
    } catch {
      // absent
    }
  }
  return false;
}

Deno.test({
  name: "with a Vulkan driver installed, init() uses Vulkan alone: EGL and Mesa's GL driver are never loaded",
  ignore: Deno.build.os !== "linux" || !hasVulkanDriver(),
  fn: async () => {
    const r = await child({});
    assert.equal(r.backend, "vulkan");
    assert.deepEqual(r.gl, [], `GL libraries mapped: ${r.gl.join(", ")}`);
  },
});

Deno.test({
  name: "a DENO_WEBGPU_BACKEND the user set is kept (gl: the OpenGL path still initialises)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const r = await child({ DENO_WEBGPU_BACKEND: "gl" }, { abortAtExitAllowed: true });
    assert.equal(r.backend, "gl");
    assert.ok(r.gl.length > 0, "the GL backend loads EGL");
    assert.ok(r.adapter.length > 0);
  },
});
