/**
 * The `webdpo` command line: `env`, `generate` (and `train`, `plot` once the trainer lands).
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { envReport } from "./env.ts";
import { generateCommand } from "./generate.ts";

const USAGE = `webdpo ${VERSION} — DPO for Hugging Face causal LMs on WebGPU

usage: webdpo <command> [options]

commands:
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
  if (cmd === "generate") return await generateCommand(rest);
  console.error(`webdpo: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
