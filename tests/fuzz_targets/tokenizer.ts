/**
 * Fuzz target (run in the sandbox worker) for a tokenizer folder: loads it, encodes and decodes a text with special
 * tokens, and renders the chat template (as text and as ids) when it has one.
 */
import { loadTokenizer, type Message } from "../../src/tokenizer/tokenizer.ts";

const TEXT = "Hello, wörld! 12 + 30 = 42\n<|im_start|>user\n🙂\u0000";
const MESSAGES: Message[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "What is 2 + 2?" },
  { role: "assistant", content: "4" },
];

function invalid(why: string): never {
  throw new Error(`invalid result: ${why}`);
}

/** Loads `dir`'s tokenizer and uses it. */
export async function tokenizerFolder(dir: string): Promise<unknown> {
  const t = await loadTokenizer(dir);
  const ids = t.encode(TEXT, { addSpecialTokens: true });
  if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) invalid(`token ids ${ids}`);
  t.decode(ids, { skipSpecialTokens: true });
  let rendered = 0;
  if (t.chatTemplate !== null) {
    rendered = t.applyChatTemplate(MESSAGES, { addGenerationPrompt: true }).length;
    t.applyChatTemplate(MESSAGES, { tokenize: true });
  }
  return { ids: ids.length, rendered };
}
