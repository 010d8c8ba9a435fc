/** The README's TypeScript examples type-check against mod.ts, and the runnable one runs. */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", root));
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

async function runDeno(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), { args, cwd: root.pathname }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr) };
}

Deno.test("every README TypeScript example type-checks", async () => {
  assert.ok(blocks.length >= 3, "the README has TypeScript examples");
  const dir = await Deno.makeTempDir({ dir: root.pathname, prefix: ".readme-check-" });
  try {
    const files: string[] = [];
    for (const [i, code] of blocks.entries()) {
      const f = `${dir}/example_${i}.ts`;
      await Deno.writeTextFile(f, code.replaceAll('"./mod.ts"', '"../mod.ts"'));
      files.push(f);
    }
    const r = await runDeno(["check", ...files]);
    assert.equal(r.code, 0, r.out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README's tensor example runs", async () => {
  const code = blocks.find((b) => b.includes("await init()") && b.includes("backward"));
  assert.ok(code, "the tensors-and-autograd example exists");
  const dir = await Deno.makeTempDir({ dir: root.pathname, prefix: ".readme-run-" });
  try {
    await Deno.writeTextFile(`${dir}/run.ts`, code.replaceAll('"./mod.ts"', '"../mod.ts"'));
    const r = await runDeno(["run", "-A", `${dir}/run.ts`]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Float32Array\(2048\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
