// The demo's synthetic task (demo/task.ts) and make-tiny-model's recipe handling (demo/make_tiny_model.ts).
import assert from "node:assert/strict";
import {
  allQuestions,
  answerText,
  needsCarry,
  parseAnswer,
  parseQuestion,
  preferenceRows,
  type Question,
  questionText,
  REJECTED_OFFSETS,
  sftRows,
  splitQuestions,
} from "../demo/task.ts";
import { mergeRecipe, RECIPE } from "../demo/make_tiny_model.ts";
import { gpuTest, setup } from "./util.ts";

const q = (a: number, b: number): Question => ({ a, op: "+", b, answer: a + b });
const stated = (text: string) => parseAnswer(text);

Deno.test("questions: every a + b of the ranges, split into disjoint seeded train and held-out sets", () => {
  const opts = { minA: 10, maxA: 99, minB: 1, maxB: 9, heldOutFraction: 0.15 };
  const all = allQuestions(opts);
  assert.equal(all.length, 90 * 9);
  assert.equal(new Set(all.map(questionText)).size, all.length);
  const { train, heldOut } = splitQuestions(opts);
  assert.equal(heldOut.length, Math.round(0.15 * all.length));
  assert.equal(train.length + heldOut.length, all.length);
  const held = new Set(heldOut.map(questionText));
  assert.ok(train.every((x) => !held.has(questionText(x))));
  assert.deepEqual(splitQuestions(opts), { train, heldOut }, "the same seed gives the same split");
  assert.notDeepEqual(splitQuestions({ ...opts, seed: 99 }).heldOut, heldOut);
  // subtraction keeps only non-negative results
  const sub = allQuestions({ minA: 0, maxA: 3, minB: 0, maxB: 3, ops: ["-"] });
  assert.ok(sub.every((x) => x.answer >= 0 && x.answer === x.a - x.b));
  assert.equal(sub.length, 10);
});

Deno.test("question and answer text round-trip through the parsers", () => {
  const x = q(48, 5);
  assert.equal(questionText(x), "What is 48 + 5?");
  assert.equal(answerText(x), "48 + 5 = 53.");
  assert.equal(answerText(x, 52), "48 + 5 = 52.");
  assert.deepEqual(parseQuestion("What is 48 + 5?"), x);
  assert.equal(parseQuestion("What is love?"), null);
  assert.equal(parseAnswer("48 + 5 = 53."), 53);
  assert.equal(parseAnswer("48 + 5 =  1    6."), 1);
  assert.equal(parseAnswer("no idea"), null);
  assert.ok(needsCarry(q(48, 5)) && !needsCarry(q(42, 5)) && needsCarry(q(45, 5)));
});

Deno.test("SFT noise: most carry answers one too low, a few others off by one or two", () => {
  const questions = allQuestions({ minA: 10, maxA: 99, minB: 1, maxB: 9 });
  const { rows, wrong } = sftRows(questions, { seed: 3, noise: { carry: 0.65, other: 0.08 }, copies: 2 });
  assert.equal(rows.length, 2 * questions.length);
  let counted = 0, carry = 0, carryLow = 0, other = 0, otherWrong = 0;
  for (const r of rows) {
    const x = parseQuestion(r.messages[0].content)!;
    const d = stated(r.messages[1].content)! - x.answer;
    if (d !== 0) counted++;
    if (needsCarry(x)) {
      carry++;
      assert.ok(d === 0 || d === -1, `a carry answer is right or one too low, got ${d}`);
      if (d === -1) carryLow++;
    } else {
      other++;
      assert.ok(Math.abs(d) <= 2);
      if (d !== 0) otherWrong++;
    }
  }
  assert.equal(counted, wrong);
  assert.ok(Math.abs(carryLow / carry - 0.65) < 0.05, `carry noise ${carryLow / carry}`);
  assert.ok(Math.abs(otherWrong / other - 0.08) < 0.03, `other noise ${otherWrong / other}`);
});

Deno.test("preference pairs: correct chosen, distinct near misses rejected, the model's own mistake first", () => {
  const questions = [q(48, 5), q(12, 3), q(99, 9), q(10, 1)];
  const offsets = new Set<number>(REJECTED_OFFSETS);
  const byQuestion = (rows: ReturnType<typeof preferenceRows>) => {
    const m = new Map<string, number[]>();
    for (const r of rows) {
      const x = parseQuestion(r.prompt[0].content)!;
      assert.equal(stated(r.chosen[0].content), x.answer, "chosen is correct");
      const v = stated(r.rejected[0].content)!;
      assert.notEqual(v, x.answer, "rejected is wrong");
      m.set(questionText(x), [...(m.get(questionText(x)) ?? []), v]);
    }
    return m;
  };
  const plain = preferenceRows(questions, { seed: 5, perQuestion: 3 });
  assert.equal(plain.length, 12);
  for (const [text, vs] of byQuestion(plain)) {
    const x = parseQuestion(text)!;
    assert.equal(new Set(vs).size, 3, "different rejected answers per question");
    assert.ok(vs.every((v) => offsets.has(v - x.answer)));
  }
  assert.deepEqual(preferenceRows(questions, { seed: 5, perQuestion: 3, mistakes: new Map() }), plain);

  // own mistakes: rejected first (wherever the rows are shuffled to), never twice, never the correct answer
  const mistakes = new Map([["What is 48 + 5?", 52], ["What is 12 + 3?", 115], ["What is 10 + 1?", 11]]);
  const own = byQuestion(preferenceRows(questions, { seed: 5, perQuestion: 2, mistakes }));
  assert.ok(own.get("What is 48 + 5?")!.includes(52));
  assert.ok(own.get("What is 12 + 3?")!.includes(115), "an own mistake need not be a near miss");
  assert.equal(own.get("What is 48 + 5?")!.filter((v) => v === 52).length, 1);
  for (const vs of own.values()) assert.equal(new Set(vs).size, 2);
  // a "mistake" that is in fact correct is not rejected
  assert.ok(!own.get("What is 10 + 1?")!.includes(11));
  const one = byQuestion(preferenceRows(questions, { seed: 9, perQuestion: 1, mistakes }));
  assert.deepEqual(one.get("What is 48 + 5?"), [52]);
  assert.deepEqual(one.get("What is 12 + 3?"), [115]);
});

Deno.test("make-tiny-model recipes: nested fields replaced, unknown ones refused", () => {
  const r = mergeRecipe(RECIPE, {
    model: { hiddenSize: 96 },
    sft: { maxSteps: 5 },
    task: { ops: ["+", "-"] },
  });
  assert.equal(r.model.hiddenSize, 96);
  assert.equal(r.model.numLayers, RECIPE.model.numLayers, "siblings are kept");
  assert.equal(r.sft.maxSteps, 5);
  assert.deepEqual(r.task.ops, ["+", "-"], "arrays are replaced, not merged");
  assert.equal(RECIPE.model.hiddenSize, 64, "the default recipe is untouched");
  assert.throws(
    () => mergeRecipe(RECIPE, { model: { hidenSize: 96 } }),
    /recipe\.model\.hidenSize is not a recipe/,
  );
  assert.throws(() => mergeRecipe(RECIPE, { sft: 3 }), /recipe\.sft must be an object/);
  assert.throws(() => mergeRecipe(RECIPE, []), /recipe must be an object/);
});

Deno.test(
  "make-tiny-model --data-only rebuilds the committed data files from the committed model",
  gpuTest,
  async () => {
    await setup();
    const src = new URL("../examples/tiny-chat", import.meta.url).pathname;
    const dir = await Deno.makeTempDir({ prefix: "webdpo-tiny-" });
    await Deno.mkdir(`${dir}/data`);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${src}/${f}`, `${dir}/${f}`);
    }
    await Deno.copyFile(`${src}/data/recipe.json`, `${dir}/data/recipe.json`);
    const script = new URL("../demo/make_tiny_model.ts", import.meta.url).pathname;
    const run = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, "--out", dir, "--data-only", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const res = await run();
    const log = new TextDecoder().decode(res.stdout) + new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, log);
    // the SFT data and held-out pairs depend on seeds only; the training pairs on the model's greedy answers too
    for (const f of ["sft_train.jsonl", "dpo_test.jsonl", "dpo_train.jsonl"]) {
      assert.equal(
        await Deno.readTextFile(`${dir}/data/${f}`),
        await Deno.readTextFile(`${src}/data/${f}`),
        `${f} is what make-tiny-model writes`,
      );
    }
    const recipe = JSON.parse(await Deno.readTextFile(`${dir}/data/recipe.json`));
    const committed = JSON.parse(await Deno.readTextFile(`${src}/data/recipe.json`));
    assert.deepEqual(recipe.trainedOn, committed.trainedOn, "where the model was trained is kept");
    assert.deepEqual(recipe.counts, committed.counts);

    // a recipe that does not match the model is refused
    await Deno.writeTextFile(`${dir}/other.json`, JSON.stringify({ model: { hiddenSize: 96 } }));
    const bad = await run("--recipe", `${dir}/other.json`);
    assert.notEqual(bad.code, 0);
    assert.match(new TextDecoder().decode(bad.stderr), /the model in .* was made with model/);
    await Deno.remove(dir, { recursive: true });
  },
);
