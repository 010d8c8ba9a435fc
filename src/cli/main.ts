/**
 * The `webdpo` command line: `train`, `data`, `plot`, `generate`, `env`.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { dataCommand } from "./data.ts";
import { envReport } from "./env.ts";
import { generateCommand } from "./generate.ts";
import { plotCommand } from "./plot.ts";
import { trainCommand } from "./train.ts";

const USAGE = `webdpo ${VERSION} — DPO for Hugging Face causal LMs on WebGPU

usage: webdpo <command> [options]

commands:
  train      DPO-train a model folder on a preference dataset (--config dpo.yaml, --key value; train --help)
  data       look at a dataset before training: format, lengths, what max_length would cut (data --help)
  plot       draw OUTPUT_DIR/training.svg (loss, reward margins, accuracies) from a run's logs
  env        print the WebGPU adapter, its limits and features, Deno and webdpo versions
  generate   continue prompts with a model folder (greedy or sampled, KV cache)

options:
  -h, --help     this help
  -V, --version  the version`;

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    console.log(USAGE);
    return 0;
  }
  if (cmd === "-V" || cmd === "--version") {
    console.log(VERSION);
    return 0;
  }
  if (cmd === "env") {
    if (rest.length) {
      console.error(`webdpo env takes no arguments (got ${rest.join(" ")})`);
      return 2;
    }
    console.log(await envReport());
    return 0;
  }
  if (cmd === "train") return await trainCommand(rest);
  if (cmd === "data") return await dataCommand(rest);
  if (cmd === "plot") return await plotCommand(rest);
  if (cmd === "generate") return await generateCommand(rest);
  console.error(`webdpo: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
