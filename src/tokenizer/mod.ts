/** Tokenizers and chat templates. */
export {
  type ChatTemplateOptions,
  loadTokenizer,
  type Message,
  Tokenizer,
  TokenizerError,
} from "./tokenizer.ts";
