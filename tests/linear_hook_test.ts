/**
 * The projection seam (src/nn/linear_hook.ts): the base slot sits below the adapter slot whatever the order they
 * were installed in, a taken slot is refused, only its owner empties it; Module.unregister.
 */
import assert from "node:assert/strict";
import { type LinearHook, LinearHooks } from "../src/nn/linear_hook.ts";
import { Module } from "../src/nn/module.ts";
import type { Tensor } from "../src/tensor/tensor.ts";

/** Hooks over a fake "tensor" (a string) that show the order they ran in. */
const T = (s: string) => s as unknown as Tensor;
const tag = (name: string): LinearHook => ({
  project: (x, module, base) =>
    T(`${name}(${x as unknown as string}, ${module}, ${base() as unknown as string})`),
});

Deno.test("linearHooks: base below adapter, in either install order; empty slots give the plain projection", () => {
  const plain = () => T("plain");
  for (const order of [["base", "adapter"], ["adapter", "base"]] as const) {
    const hooks = new LinearHooks();
    assert.equal(hooks.project(T("x"), "m", plain), "plain");
    const made = { base: tag("int8"), adapter: tag("lora") };
    for (const slot of order) hooks.install(slot, made[slot]);
    assert.equal(hooks.project(T("x"), "m.q_proj", plain), "lora(x, m.q_proj, int8(x, m.q_proj, plain))");
    hooks.remove("base", made.base);
    assert.equal(hooks.project(T("x"), "m", plain), "lora(x, m, plain)");
  }
});

Deno.test("linearHooks: a taken slot is refused; reinstalling is a no-op; only the owner removes", () => {
  const hooks = new LinearHooks();
  const a = tag("a");
  const b = tag("b");
  hooks.install("adapter", a);
  hooks.install("adapter", a);
  assert.throws(() => hooks.install("adapter", b), /adapter projection hook is taken/);
  hooks.remove("adapter", b);
  assert.equal(hooks.adapter, a);
  hooks.remove("adapter", a);
  assert.equal(hooks.adapter, null);
  hooks.install("adapter", b);
  assert.equal(hooks.adapter, b);
});

Deno.test("Module.unregister removes a parameter and returns it; an absent name is an error", () => {
  const m = new Module();
  const fake = { name: undefined, size: 3 } as unknown as Tensor;
  m.register("layer.weight", fake);
  assert.equal(m.unregister("layer.weight"), fake);
  assert.equal(m.maybeParam("layer.weight"), null);
  assert.deepEqual(m.namedParameters(), []);
  assert.throws(() => m.unregister("layer.weight"), /parameter "layer.weight" is not part of this model/);
});
