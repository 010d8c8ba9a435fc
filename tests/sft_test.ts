import assert from "node:assert/strict";
import { noGrad, scope } from "../mod.ts";
import { initModel } from "../src/models/init.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { SFTConfig, SFTConfigError } from "../src/sft/config.ts";
import { collateSft, tokenizeSftRow } from "../src/sft/data.ts";
import { SFTTrainer } from "../src/sft/trainer.ts";
import { Generator } from "../src/tensor/random.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import {
  IM_END,
  tinyModelConfig,
  tinySpecialTokensMap,
  tinyTokenizerConfig,
  tinyTokenizerJson,
} from "../demo/tiny_chat.ts";
import { gpuTest, setup } from "./util.ts";

const tok = new Tokenizer(tinyTokenizerJson(), tinyTokenizerConfig(128), tinySpecialTokensMap());
const opts = {
  maxLength: 1024,
  assistantOnlyLoss: true,
  completionOnlyLoss: null,
  datasetTextField: "text",
  labelPadTokenId: -100,
};
const quiet = { log: (_: string) => {} };
const TINY = tinyModelConfig({
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositions: 128,
  ropeTheta: 100,
});

/** The text of the scored tokens (labels ≠ -100), and of the others. */
function split(ids: number[], labels: number[]): { scored: string; unscored: string } {
  const scored: number[] = [], unscored: number[] = [];
  ids.forEach((id, i) => (labels[i] === -100 ? unscored : scored).push(id));
  return { scored: tok.decode(scored), unscored: tok.decode(unscored) };
}

Deno.test("conversations: only the assistant turns (with their <|im_end|>) are labelled", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "What is 2 + 2?" },
    { role: "assistant", content: "2 + 2 = 4." },
    { role: "user", content: "And 3 + 3?" },
    { role: "assistant", content: "3 + 3 = 6." },
  ];
  const e = tokenizeSftRow({ messages }, tok, opts);
  const text = tok.applyChatTemplate(messages);
  assert.equal(tok.decode(e.inputIds), text, "the ids are the rendered conversation");
  assert.equal(e.inputIds.length, e.labels.length);
  e.labels.forEach((l, i) => assert.ok(l === -100 || l === e.inputIds[i], `label ${i} is its token or -100`));
  const s = split(e.inputIds, e.labels);
  assert.equal(s.scored, `2 + 2 = 4.${IM_END}3 + 3 = 6.${IM_END}`);
  assert.equal(
    s.unscored,
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n" +
      "\n<|im_start|>user\nAnd 3 + 3?<|im_end|>\n<|im_start|>assistant\n",
  );
  // every token before the first answer is masked, the answer's first token is not
  const first = tok.encode(text.slice(0, text.indexOf("2 + 2 = 4."))).length;
  assert.ok(e.labels.slice(0, first).every((l) => l === -100));
  assert.equal(e.labels[first], e.inputIds[first]);

  const all = tokenizeSftRow({ messages }, tok, { ...opts, assistantOnlyLoss: false });
  assert.deepEqual(all.labels, all.inputIds, "assistantOnlyLoss false scores every token");
});

Deno.test("prompt/completion and text rows; errors name the row", () => {
  const pc = tokenizeSftRow({ prompt: "ab", completion: "cd" }, tok, opts, "r");
  // no BOS in this tokenizer; EOS (<|im_end|>) appended and scored
  assert.equal(tok.decode(pc.inputIds), `abcd${IM_END}`);
  assert.equal(split(pc.inputIds, pc.labels).scored, `cd${IM_END}`);
  const both = tokenizeSftRow({ prompt: "ab", completion: "cd" }, tok, {
    ...opts,
    completionOnlyLoss: false,
  });
  assert.deepEqual(both.labels, both.inputIds);
  const conv = tokenizeSftRow(
    {
      prompt: [{ role: "user", content: "hi" }],
      completion: [{ role: "assistant", content: "yo" }],
    },
    tok,
    opts,
  );
  assert.equal(split(conv.inputIds, conv.labels).scored, `yo${IM_END}`);
  const text = tokenizeSftRow({ text: "hello" }, tok, opts);
  assert.equal(tok.decode(text.inputIds), `hello${IM_END}`);
  assert.deepEqual(text.labels, text.inputIds);
  const long = tokenizeSftRow({ prompt: "abc", completion: "defgh" }, tok, { ...opts, maxLength: 5 });
  assert.equal(tok.decode(long.inputIds), "abcde", "truncated at the end to maxLength");

  assert.throws(
    () => tokenizeSftRow({ messages: [{ role: "user", content: "x" }] }, tok, opts, "f.jsonl line 3"),
    /f\.jsonl line 3: the conversation has no assistant message/,
  );
  assert.throws(() => tokenizeSftRow({ question: "x" }, tok, opts, "row 7"), /row 7: an SFT row needs/);
  assert.throws(() => tokenizeSftRow({ prompt: "x", completion: "" }, tok, opts), /"completion" is empty/);
  assert.throws(
    () => tokenizeSftRow({ prompt: "abcdef", completion: "g" }, tok, { ...opts, maxLength: 4 }, "row 2"),
    /row 2: no token is left to train on after truncation to maxLength 4/,
  );
  assert.throws(() => tokenizeSftRow({ messages: "hi" }, tok, opts), /"messages" must be a non-empty list/);
});

Deno.test("collateSft right-pads and counts the scored labels", () => {
  const b = collateSft([{ inputIds: [5, 6, 7], labels: [-100, 6, 7] }, { inputIds: [8], labels: [8] }], {
    padTokenId: 0,
  });
  assert.equal(b.B, 2);
  assert.equal(b.T, 3);
  assert.deepEqual([...b.inputIds], [5, 6, 7, 8, 0, 0]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 0, 0]);
  assert.deepEqual([...b.labels], [-100, 6, 7, 8, -100, -100]);
  assert.equal(b.tokens, 2, "a row's first label is never scored");
});

Deno.test("SFTConfig validates its options", () => {
  const c = new SFTConfig({ learningRate: 1e-3 });
  assert.equal(c.learningRate, 1e-3);
  assert.equal(c.perDeviceTrainBatchSize, 8);
  assert.equal(c.assistantOnlyLoss, true);
  assert.throws(
    () => new SFTConfig({ learningRte: 1 } as never),
    /unknown option "learningRte" \(did you mean "learningRate"\?\)/,
  );
  assert.throws(() => new SFTConfig({ maxSteps: 0 }), SFTConfigError);
  assert.throws(
    () => new SFTConfig({ perDeviceTrainBatchSize: 1.5 }),
    /perDeviceTrainBatchSize must be an integer/,
  );
  assert.throws(() => new SFTConfig({ adamBeta1: 1 }), /adamBeta1 must be in \[0, 1\)/);
  assert.throws(
    () => new SFTConfig({ lrSchedulerType: "sawtooth" as never }),
    /lrSchedulerType must be one of/,
  );
  assert.throws(() => new SFTConfig({ learningRate: "fast" as never }), /learningRate must be a number/);
});

/**
 * Conversations whose user turn is random noise ("wxyz") with one letter of "abcd" somewhere in it, and whose
 * answer is that letter in upper case: the answer is predictable, the user turn is not.
 */
function noisyPromptTask(n: number, seed: number) {
  const g = new Generator(seed);
  const letters = "abcd";
  return Array.from({ length: n }, () => {
    let noise = "";
    for (let k = 0; k < 6; k++) noise += "wxyz"[g.int(4)];
    const c = letters[g.int(letters.length)];
    const at = g.int(7);
    return {
      messages: [
        { role: "user", content: noise.slice(0, at) + c + noise.slice(at) },
        { role: "assistant", content: c.toUpperCase() },
      ],
    };
  });
}

/** The mean loss over the scored tokens, computed on the host in float64 from the model's logits. */
async function hostLoss(model: CausalLM, rows: { messages: { role: string; content: string }[] }[]) {
  let total = 0, count = 0;
  for (const r of rows) {
    const e = tokenizeSftRow(r, tok, opts);
    const logits = await scope(() => noGrad(() => model.forward([e.inputIds]).toArray()));
    const V = model.config.vocabSize;
    for (let t = 1; t < e.inputIds.length; t++) {
      if (e.labels[t] === -100) continue;
      const off = (t - 1) * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, logits[off + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[off + v] - m);
      total -= logits[off + e.labels[t]] - m - Math.log(z);
      count++;
    }
  }
  return total / count;
}

Deno.test(
  "SFT learns the assistant turns only; eval_loss matches a float64 host computation",
  gpuTest,
  async () => {
    await setup();
    // 512 rows seen about three times: too many to memorise, so a low held-out loss means the rule was learned
    const train = noisyPromptTask(512, 1);
    const evalRows = noisyPromptTask(16, 2);
    const run = async (assistantOnlyLoss: boolean) => {
      const model = await initModel(TINY, { seed: 3 });
      const trainer = new SFTTrainer({
        model,
        tokenizer: tok,
        trainDataset: train,
        evalDataset: evalRows,
        args: new SFTConfig({
          learningRate: 1e-2,
          maxSteps: 100,
          perDeviceTrainBatchSize: 16,
          loggingSteps: 25,
          lrSchedulerType: "constant",
          disableTqdm: true,
          assistantOnlyLoss,
        }),
        ...quiet,
      });
      const before = await trainer.evaluate();
      const out = await trainer.train();
      const after = await trainer.evaluate();
      return { model, trainer, before, after, out };
    };
    const a = await run(true);
    const logs = a.trainer.state.logHistory.filter((l) => "loss" in l);
    assert.equal(logs.length, 4);
    assert.equal(a.out.globalStep, 100);
    for (const k of ["loss", "grad_norm", "learning_rate", "num_tokens", "epoch", "step"]) {
      assert.ok(
        k in logs[0],
        k,
      );
    }
    assert.ok(logs[3].loss < logs[0].loss / 4, `loss ${logs[0].loss} → ${logs[3].loss}`);
    // the answer (a letter and <|im_end|>) is predictable from the prompt: near zero loss on held-out rows
    assert.ok(a.before.eval_loss > 2, `eval_loss before ${a.before.eval_loss}`);
    assert.ok(a.after.eval_loss < 0.2, `eval_loss after ${a.after.eval_loss}`);
    const host = await hostLoss(a.model, evalRows);
    assert.ok(
      Math.abs(host - a.after.eval_loss) < 1e-4 * Math.max(1, host),
      `host ${host}, eval_loss ${a.after.eval_loss}`,
    );
    a.trainer.dispose();
    a.model.dispose();
    // scoring the random user turns too: the loss cannot go near zero (six random letters of four per row are
    // about 8.3 nats over some twenty scored tokens: a floor near 0.4 per token)
    const b = await run(false);
    assert.ok(b.after.eval_loss > 0.3, `eval_loss with every token scored ${b.after.eval_loss}`);
    b.trainer.dispose();
    b.model.dispose();
  },
);

Deno.test("SFTTrainer argument errors", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY, { seed: 4 });
  assert.throws(
    () => new SFTTrainer({ model, tokenizer: tok, trainDataset: [], args: {} as SFTConfig }),
    /args must be an SFTConfig/,
  );
  const empty = new SFTTrainer({
    model,
    tokenizer: tok,
    trainDataset: [],
    args: new SFTConfig({ maxSteps: 1 }),
  });
  await assert.rejects(() => empty.train(), /the dataset has no rows/);
  const noEval = new SFTTrainer({
    model,
    tokenizer: tok,
    trainDataset: noisyPromptTask(2, 1),
    args: new SFTConfig({ maxSteps: 1 }),
  });
  await assert.rejects(() => noEval.evaluate(), /no evalDataset/);
  model.dispose();
});

Deno.test(
  "one SFT epoch uses every row once, its last optimizer step taking fewer micro-batches",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(TINY, { seed: 5 });
    const rows = noisyPromptTask(10, 7);
    const seen: number[] = [];
    const trainer = new SFTTrainer({
      model,
      tokenizer: tok,
      trainDataset: rows,
      args: new SFTConfig({
        perDeviceTrainBatchSize: 1,
        gradientAccumulationSteps: 4,
        numTrainEpochs: 1,
        loggingSteps: 1,
        disableTqdm: true,
      }),
      callbacks: [{ onStepEnd: (s) => void seen.push(s.numTokens) }],
      ...quiet,
    });
    try {
      const out = await trainer.train();
      // 10 rows in micro-batches of 1, 4 per step: 4 + 4 + 2 (it was 2 steps, 8 rows, "epoch 1.0")
      assert.equal(out.globalStep, 3);
      assert.equal(trainer.state.epoch, 1);
      const c = new SFTConfig({});
      const opts = {
        maxLength: c.maxLength,
        assistantOnlyLoss: c.assistantOnlyLoss,
        completionOnlyLoss: c.completionOnlyLoss,
        datasetTextField: c.datasetTextField,
        labelPadTokenId: c.labelPadTokenId,
      };
      const tokens = rows.reduce((n, r) => n + tokenizeSftRow(r, tok, opts).inputIds.length, 0);
      assert.equal(seen[2], tokens, "every row's tokens were trained on once");
    } finally {
      trainer.dispose();
      model.dispose();
    }
  },
);
