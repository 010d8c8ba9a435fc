/**
 * The demo's synthetic task: short arithmetic questions ("What is 7 + 5?") answered in a short sentence
 * ("7 + 5 = 12."). Everything is generated from a seed, so `deno task make-tiny-model` reproduces the same files.
 *
 * - The questions (every `a op b` with operands in [0, maxOperand] and a non-negative result) are split once into
 *   training and held-out questions; the held-out ones appear in no training file.
 * - The SFT data is deliberately noisy: about a third of its answers are off by a little, most of them one too low
 *   on questions that need a carry, so the SFT model learns the format and the sums but is often wrong.
 * - The preference data (TRL's conversational format) pairs each question's correct sentence (chosen) with a
 *   plausible wrong one off by a little (rejected).
 */
import { Generator } from "../src/tensor/random.ts";

export type Op = "+" | "-";

export interface Question {
  a: number;
  op: Op;
  b: number;
  /** The correct result. */
  answer: number;
}

export interface TaskOptions {
  /** The seed of every random choice (default 1234). */
  seed?: number;
  /** The first operand is minA..maxA (default 10..99: always two digits, so every question has one length). */
  minA?: number;
  maxA?: number;
  /** The second operand is minB..maxB (default 0..9). */
  minB?: number;
  maxB?: number;
  /** The operations (default ["+"]; subtraction only where the result is ≥ 0). */
  ops?: Op[];
  /** The share of questions held out from all training (default 0.3). */
  heldOutFraction?: number;
}

export interface Message {
  role: string;
  content: string;
}

/** A row of TRL's conversational preference format. */
export interface PreferenceRow {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
}

/** A row of the conversational SFT format. */
export interface SFTRow {
  messages: Message[];
}

/** The user's question. */
export function questionText(q: Question): string {
  return `What is ${q.a} ${q.op} ${q.b}?`;
}

/** The answer sentence stating `value` as the result. */
export function answerText(q: Question, value: number = q.answer): string {
  return `${q.a} ${q.op} ${q.b} = ${value}.`;
}

/** The result an answer sentence states: the integer after its "=" ("37 + 5 = 42." → 42), or null. */
export function parseAnswer(text: string): number | null {
  const m = /=\s*(-?\d+)/.exec(text);
  return m ? Number(m[1]) : null;
}

/** The question a prompt asks ("What is 7 + 5?"), or null. */
export function parseQuestion(text: string): Question | null {
  const m = /What is (\d+) ([+-]) (\d+)\?/.exec(text);
  if (!m) return null;
  const a = Number(m[1]), b = Number(m[3]), op = m[2] as Op;
  return { a, op, b, answer: op === "+" ? a + b : a - b };
}

/** Every question of the task, in a fixed order. */
export function allQuestions(opts: TaskOptions = {}): Question[] {
  const minA = opts.minA ?? 10, maxA = opts.maxA ?? 99, minB = opts.minB ?? 0, maxB = opts.maxB ?? 9;
  const ops = opts.ops ?? ["+"];
  const out: Question[] = [];
  for (const op of ops) {
    for (let a = minA; a <= maxA; a++) {
      for (let b = minB; b <= maxB; b++) {
        const answer = op === "+" ? a + b : a - b;
        if (answer >= 0) out.push({ a, op, b, answer });
      }
    }
  }
  return out;
}

/** The questions split into training and held-out sets (disjoint), shuffled with the seed. */
export function splitQuestions(opts: TaskOptions = {}): { train: Question[]; heldOut: Question[] } {
  const all = new Generator(opts.seed ?? 1234).shuffle(allQuestions(opts));
  const n = Math.round(all.length * (opts.heldOutFraction ?? 0.3));
  return { heldOut: all.slice(0, n), train: all.slice(n) };
}

/** A plausible wrong result: off by 1 or 2 either way, never negative, never the answer. */
export function nearMiss(q: Question, g: Generator): number {
  for (;;) {
    const d = (1 + g.int(2)) * (g.uniform() < 0.5 ? -1 : 1);
    const v = q.answer + d;
    if (v >= 0) return v;
  }
}

/** Whether the sum needs a carry from the units into the tens. */
export function needsCarry(q: Question): boolean {
  return q.op === "+" && (q.a % 10) + (q.b % 10) >= 10;
}

/** How the SFT answers are corrupted. */
export interface SFTNoise {
  /** The share of answers one too low among questions that need a carry. */
  carry: number;
  /** The share of answers off by one or two (either way) among the other questions. */
  other: number;
}

/**
 * Noisy SFT conversations: each training question `copies` times. The noise is systematic, like a sloppy
 * annotator's: most answers that need a carry are one too low, and a few of the others are off by one or two, so
 * the SFT model learns to get carries wrong — on questions it has never seen too.
 */
export function sftRows(
  questions: Question[],
  { seed, noise, copies = 1 }: { seed: number; noise: SFTNoise; copies?: number },
): { rows: SFTRow[]; wrong: number } {
  const g = new Generator(seed);
  const rows: SFTRow[] = [];
  let wrong = 0;
  for (let c = 0; c < copies; c++) {
    for (const q of questions) {
      let value = q.answer;
      if (needsCarry(q)) {
        if (g.uniform() < noise.carry) value -= 1;
      } else if (g.uniform() < noise.other) value = nearMiss(q, g);
      if (value !== q.answer) wrong++;
      rows.push({
        messages: [
          { role: "user", content: questionText(q) },
          { role: "assistant", content: answerText(q, value) },
        ],
      });
    }
  }
  return { rows: g.shuffle(rows), wrong };
}

/** The wrong results a preference pair may reject: off by one or two, or by ten (a carry forgotten or added). */
export const REJECTED_OFFSETS = [-2, -1, 1, 2, -10, 10] as const;

/**
 * Preference pairs: per question `perQuestion` pairs, each rejecting a different plausible wrong result. The first
 * rejected result is the model's own mistake where `mistakes` has one for the question (keyed by `questionText`:
 * on-policy pairs, as when the rejected answers are sampled from the SFT model); the others are offsets of
 * `offsets` chosen at random (results below zero are skipped).
 */
export function preferenceRows(
  questions: Question[],
  { seed, perQuestion = 1, offsets = REJECTED_OFFSETS, mistakes }: {
    seed: number;
    perQuestion?: number;
    offsets?: readonly number[];
    mistakes?: ReadonlyMap<string, number>;
  },
): PreferenceRow[] {
  const g = new Generator(seed);
  const rows: PreferenceRow[] = [];
  for (const q of questions) {
    const own = mistakes?.get(questionText(q));
    const wrong = g.shuffle(offsets.map((d) => q.answer + d).filter((v) => v >= 0 && v !== own));
    if (own !== undefined && own !== q.answer && own >= 0) wrong.unshift(own);
    for (const v of wrong.slice(0, perQuestion)) {
      rows.push({
        prompt: [{ role: "user", content: questionText(q) }],
        chosen: [{ role: "assistant", content: answerText(q) }],
        rejected: [{ role: "assistant", content: answerText(q, v) }],
      });
    }
  }
  return g.shuffle(rows);
}

/** Rows as JSON Lines text. */
export function toJsonl(rows: unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
}
