/**
 * What the demo measures on the held-out questions:
 * - exact-answer accuracy: the share of greedy generations whose stated result (`parseAnswer`) is correct;
 * - preference accuracy: the share of held-out pairs where the policy's log-probability of the chosen answer
 *   exceeds that of the rejected one (TRL's `rewards/accuracies` with the reference taken out).
 */
import { noGrad } from "../src/autograd/grad_mode.ts";
import { fusedLogProbs } from "../src/autograd/ops/fused_logprobs.ts";
import { shiftLabels } from "../src/autograd/ops/labels.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { scope } from "../src/autograd/scope.ts";
import { collate, tokenizeRow } from "../src/data/tokenize_row.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { generate } from "../src/models/generate.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { answerText, parseAnswer, type PreferenceRow, type Question, questionText } from "./task.ts";

export interface Answer {
  question: Question;
  /** The generated reply. */
  text: string;
  /** The result it states, or null. */
  value: number | null;
  correct: boolean;
}

/** Greedy answers to `questions` (batches of `batchSize`). */
export async function answerQuestions(
  model: CausalLM,
  tokenizer: Tokenizer,
  questions: Question[],
  { batchSize = 64, maxNewTokens }: { batchSize?: number; maxNewTokens?: number } = {},
): Promise<Answer[]> {
  const wasTraining = model.training;
  model.eval();
  const longest = Math.max(...questions.map((q) => answerText(q).length));
  const out: Answer[] = [];
  try {
    for (let i = 0; i < questions.length; i += batchSize) {
      const chunk = questions.slice(i, i + batchSize);
      const res = await generate(model, tokenizer, chunk.map(questionText), {
        chat: true,
        maxNewTokens: maxNewTokens ?? longest + 4,
      });
      chunk.forEach((q, k) => {
        const text = res.texts[k].trim();
        const value = parseAnswer(text);
        out.push({ question: q, text, value, correct: value === q.answer });
      });
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/** The share of correct answers. */
export function accuracy(answers: Answer[]): number {
  return answers.length ? answers.filter((a) => a.correct).length / answers.length : NaN;
}

/** Per pair, the policy's log-probabilities of the chosen and the rejected answer. */
export async function pairLogProbs(
  model: CausalLM,
  tokenizer: Tokenizer,
  rows: PreferenceRow[],
  { batchSize = 32 }: { batchSize?: number } = {},
): Promise<{ chosen: number[]; rejected: number[] }> {
  const opts = { maxLength: 1 << 20, maxPromptLength: 1 << 20, labelPadTokenId: -100 };
  const tokenized = rows.map((r, i) => tokenizeRow({ ...r }, tokenizer, opts, `held-out pair ${i}`));
  const pad = tokenizer.padTokenId ?? 0;
  const chosen: number[] = [], rejected: number[] = [];
  const V = model.config.vocabSize;
  for (let i = 0; i < tokenized.length; i += batchSize) {
    const batch = collate(tokenized.slice(i, i + batchSize), { padTokenId: pad });
    const R = 2 * batch.B, T = batch.T;
    const shifted = shiftLabels(batch.labels, [R, T]);
    for (const id of batch.inputIds) {
      if (id >= V) throw new RangeError(`token id ${id} is outside the model's vocabulary (${V})`);
    }
    const tok = await scope(() =>
      noGrad(() => {
        const shape: [number, number] = [R, T];
        const h = model.hiddenStates({ data: batch.inputIds, shape }, {
          attentionMask: { data: batch.attentionMask, shape },
        });
        return fusedLogProbs(reshape(h, [R * T, h.shape[2]]), model.lmHeadWeight(), shifted).toArray();
      })
    );
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let t = 0; t < T; t++) s += tok[r * T + t];
      (r < batch.B ? chosen : rejected).push(s);
    }
  }
  return { chosen, rejected };
}

/** The share of pairs whose chosen answer the model finds more likely than the rejected one. */
export async function preferenceAccuracy(
  model: CausalLM,
  tokenizer: Tokenizer,
  rows: PreferenceRow[],
  opts: { batchSize?: number } = {},
): Promise<number> {
  const wasTraining = model.training;
  model.eval();
  try {
    const { chosen, rejected } = await pairLogProbs(model, tokenizer, rows, opts);
    return chosen.filter((c, i) => c > rejected[i]).length / chosen.length;
  } finally {
    model.train(wasTraining);
  }
}
