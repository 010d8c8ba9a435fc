/** The golden vectors' toy tokenizer: greedy longest match, left to right, over `vocab`; id = index in vocab. */
import { Template } from "@huggingface/jinja";
import type { Message } from "../src/tokenizer/tokenizer.ts";
import type { RowTokenizer } from "../src/data/tokenize_row.ts";

export interface ToySpec {
  vocab: string[];
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  bos_token: string | null;
  eos_token: string | null;
  chat_template?: string;
}

export class ToyTokenizer implements RowTokenizer {
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  constructor(readonly spec: ToySpec) {
    this.bosTokenId = spec.bos_token_id;
    this.eosTokenId = spec.eos_token_id;
    this.padTokenId = spec.pad_token_id;
  }
  encode(text: string): number[] {
    const out: number[] = [];
    let i = 0;
    while (i < text.length) {
      let best = -1;
      let bestLen = 0;
      this.spec.vocab.forEach((v, id) => {
        if (v.length > bestLen && text.startsWith(v, i)) {
          best = id;
          bestLen = v.length;
        }
      });
      if (best < 0) throw new Error(`toy tokenizer: no token for ${JSON.stringify(text.slice(i))}`);
      out.push(best);
      i += bestLen;
    }
    return out;
  }
  /** The text of `ids`: their vocabulary entries joined (pad, BOS and EOS left out with skipSpecialTokens). */
  decode(
    ids: ArrayLike<number>,
    { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {},
  ): string {
    const special = new Set([this.padTokenId, this.bosTokenId, this.eosTokenId]);
    let out = "";
    for (const id of Array.from(ids)) {
      if (skipSpecialTokens && special.has(id)) continue;
      const piece = this.spec.vocab[id];
      if (piece === undefined) throw new Error(`toy tokenizer: no token with id ${id}`);
      out += piece;
    }
    return out;
  }
  applyChatTemplate(messages: Message[], opts: { addGenerationPrompt?: boolean } = {}): string {
    return new Template(this.spec.chat_template!).render({
      messages,
      bos_token: this.spec.bos_token ?? "",
      eos_token: this.spec.eos_token ?? "",
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    });
  }
}
