/**
 * The queue's bind-group cache (src/gpu/queue.ts): a dispatch of the same pipeline and buffer ranges reuses its
 * bind group, and the groups of a buffer the pool destroys are dropped with it.
 */
import assert from "node:assert/strict";
import { emptyCache, sync, trimPool } from "../mod.ts";
import { bindGroupStats } from "../src/gpu/queue.ts";
import { addInPlace } from "../src/autograd/accumulate.ts";
import { empty } from "../src/tensor/tensor.ts";
import { gpuTest, setup } from "./util.ts";

Deno.test("bind groups: cached per buffer, dropped with the buffers the pool destroys", gpuTest, async () => {
  await setup();
  await sync();
  emptyCache();
  const a = empty([64]), b = empty([64]), c = empty([64]);
  const before = bindGroupStats();
  addInPlace(a, b);
  addInPlace(a, b);
  addInPlace(a, c);
  let st = bindGroupStats();
  assert.equal(st.created - before.created, 2, "the second dispatch of (a, b) reused the first one's group");
  assert.equal(st.cached, before.cached + 2);
  c.dispose();
  trimPool();
  trimPool(); // c's buffer idle for a whole period: destroyed, and (a, c)'s group with it
  st = bindGroupStats();
  assert.equal(st.cached, before.cached + 1);
  addInPlace(a, b);
  assert.equal(bindGroupStats().created, st.created, "(a, b)'s group is still cached");
  for (const t of [a, b]) t.dispose();
  await sync();
  emptyCache();
});
