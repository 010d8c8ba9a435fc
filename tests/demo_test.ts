/** The demo: its command line, and a shortened run through the whole path with the artefacts it writes. */
import assert from "node:assert/strict";
import { DEMO_DEFAULTS, DemoUsageError, parseDemoArgs, runDemo } from "../demo/run.ts";
import { loadModel } from "../src/models/loader.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";
import { answerQuestions } from "../demo/measure.ts";
import { readSafetensorsHeader } from "../src/models/safetensors.ts";
import { gpuTest, setup } from "./util.ts";

Deno.test("demo command line: flags, --help, errors", () => {
  assert.equal(parseDemoArgs(["--help"]), null);
  assert.equal(parseDemoArgs(["--steps", "3", "-h"]), null);
  assert.deepEqual(parseDemoArgs([]), DEMO_DEFAULTS);
  const o = parseDemoArgs([
    "--steps",
    "7",
    "--loss_type=ipo",
    "--beta",
    "0.5",
    "--lr",
    "2e-4",
    "--output-dir",
    "/tmp/x",
    "--held_out",
    "5",
    "--batch_size",
    "4",
    "--rpo_alpha",
    "0.5",
  ])!;
  assert.equal(o.steps, 7);
  assert.equal(o.lossType, "ipo");
  assert.equal(o.beta, 0.5);
  assert.equal(o.learningRate, 2e-4);
  assert.equal(o.outputDir, "/tmp/x");
  assert.equal(o.heldOut, 5);
  assert.equal(o.batchSize, 4);
  assert.equal(o.rpoAlpha, 0.5);
  assert.throws(() => parseDemoArgs(["--rpo_alpha", "-1"]), /--rpo_alpha must be ≥ 0/);
  assert.equal(parseDemoArgs(["--learning_rate", "1e-3"])!.learningRate, 1e-3);
  assert.throws(
    () => parseDemoArgs(["--stpes", "3"]),
    /unknown option --stpes; did you mean --steps\? The options are --steps, /,
  );
  assert.throws(() => parseDemoArgs(["--steps", "three"]), /--steps must be an integer, got "three"/);
  assert.throws(() => parseDemoArgs(["--steps", "0"]), /--steps must be ≥ 1/);
  assert.throws(() => parseDemoArgs(["--beta"]), /--beta needs a value/);
  assert.throws(() => parseDemoArgs(["train"]), DemoUsageError);
});

Deno.test("deno task demo --help lists the options", async () => {
  const script = new URL("../demo/main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--help"],
    stdout: "piped",
  })
    .output();
  assert.equal(out.code, 0);
  const text = new TextDecoder().decode(out.stdout);
  for (const flag of ["--steps", "--loss_type", "--output_dir", "--beta", "--lr", "--help"]) {
    assert.ok(text.includes(flag), `--help mentions ${flag}`);
  }
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--nope"],
    stderr: "piped",
  })
    .output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown option --nope/);
});

Deno.test("a shortened demo runs the whole path and writes its artefacts", gpuTest, async () => {
  await setup();
  const dir = await Deno.makeTempDir({ prefix: "webdpo-demo-" });
  const lines: string[] = [];
  const r = await runDemo({ steps: 4, heldOut: 12, batchSize: 8, outputDir: dir }, {
    print: (l) => lines.push(l),
  });
  const text = lines.join("\n");
  // 1. the adapter and the plan; 2.–4. the measurements, the table and three questions
  assert.match(text, /adapter: \S/);
  assert.ok(
    text.includes(
      `measure on 12 held-out questions → DPO (sigmoid loss + ${DEMO_DEFAULTS.rpoAlpha} × chosen NLL (RPO), beta ${DEMO_DEFAULTS.beta}, `,
    ),
    text,
  );
  assert.match(text, /exact-answer accuracy \(greedy\) +\d+\.\d% +\d+\.\d%/);
  // the table shows the measured values (before, after), each a share of the held-out pairs
  const shown = /preference accuracy +(\d+\.\d)% +(\d+\.\d)%/.exec(text);
  assert.ok(shown, text);
  assert.deepEqual(
    [shown[1], shown[2]],
    [r.before, r.after].map((m) => (100 * m.preferenceAccuracy).toFixed(1)),
  );
  assert.equal((text.match(/ Q: What is \d+ \+ \d+\?/g) ?? []).length, 3);
  assert.equal((text.match(/ before: /g) ?? []).length, 3);
  for (const m of [r.before, r.after]) {
    assert.equal(m.answers.length, 12);
    assert.equal(m.exactAccuracy, m.answers.filter((a) => a.correct).length / 12);
    for (const a of m.answers) assert.equal(a.correct, a.value === a.question.answer);
  }
  const logs = r.logHistory.filter((l) => "loss" in l);
  assert.ok(logs.length >= 1);
  assert.equal(logs[logs.length - 1].step, 4);
  for (
    const k of [
      "loss",
      "rewards/margins",
      "rewards/accuracies",
      "rewards/chosen",
      "rewards/rejected",
      "nll_loss",
    ]
  ) {
    assert.ok(Number.isFinite(logs[0][k]), `${k} is logged`);
  }

  // the artefacts
  for (
    const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "generation_config.json",
      "metrics.jsonl",
      "trainer_state.json",
      "training.svg",
      "demo_results.json",
    ]
  ) assert.ok(r.files.includes(f), `${f} is written (${r.files.join(", ")})`);
  const metrics = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.ok(
    metrics.some((m) => m.step === 4 && Number.isFinite(m.loss)),
    "metrics.jsonl has the last step's loss",
  );
  const state = JSON.parse(await Deno.readTextFile(`${dir}/trainer_state.json`));
  assert.ok(Array.isArray(state.log_history) && state.log_history.length >= 1);
  assert.match(await Deno.readTextFile(`${dir}/training.svg`), /^<svg|^<\?xml/);
  const results = JSON.parse(await Deno.readTextFile(`${dir}/demo_results.json`));
  assert.equal(results.before.exact_accuracy, r.before.exactAccuracy);
  assert.equal(results.after.exact_accuracy, r.after.exactAccuracy);
  assert.equal(results.after.answers.length, 12);
  const header = await readSafetensorsHeader(`${dir}/model.safetensors`);
  assert.ok(header.byName.has("lm_head.weight"));

  // the saved model is the trained one: reloaded, it answers as the run measured after training
  const model = await loadModel(dir);
  const tok = await loadTokenizer(dir);
  const again = await answerQuestions(model, tok, r.after.answers.map((a) => a.question));
  assert.deepEqual(again.map((a) => a.text), r.after.answers.map((a) => a.text));
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});
