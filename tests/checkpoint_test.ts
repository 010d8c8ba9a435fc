import assert from "node:assert/strict";
import { loadModel } from "../src/models/loader.ts";
import { mul, sum, tensor } from "../mod.ts";
import { gpuTest, peakAndGradients, randomArray, setup } from "./util.ts";

const FIX = new URL("./fixtures/hf-reference/", import.meta.url).pathname;

for (const name of ["llama", "gpt2"]) {
  Deno.test(
    `${name}: gradient checkpointing gives the same gradients with less activation memory`,
    gpuTest,
    async () => {
      await setup();
      const model = await loadModel(`${FIX}${name}`);
      try {
        const ids = [[5, 17, 99, 3, 250, 41, 7, 8, 9, 10, 11, 12], [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0]];
        const mask = [ids[0].map(() => 1), [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]];
        const V = model.config.vocabSize;
        const R = randomArray(2 * 12 * V, 5);
        const run = async (ckpt: boolean) => {
          model.gradientCheckpointing = ckpt;
          return await peakAndGradients(model, () => {
            const logits = model.forward(ids, { attentionMask: mask });
            return sum(mul(logits, tensor(R, logits.shape)));
          });
        };
        const plain = await run(false);
        const ckpt = await run(true);
        for (const [n, g] of plain.grads) {
          const h = ckpt.grads.get(n)!;
          let worst = 0;
          for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - h[i]));
          assert.ok(worst <= 1e-5 * Math.max(1, ...Array.from(g, Math.abs)), `${n}: max difference ${worst}`);
        }
        assert.ok(ckpt.peak < plain.peak, `peak with checkpointing ${ckpt.peak} ≥ without ${plain.peak}`);
      } finally {
        model.gradientCheckpointing = false;
        model.dispose();
      }
    },
  );
}
