/**
 * Fuzz target (run in the sandbox worker) for the configuration of `webdpo train`: a YAML file (`dir/dpo.yaml`,
 * when the case has one) and command-line flags, through loadTrainConfig. Warnings are not printed.
 */
import { loadTrainConfig } from "../../src/cli/config_file.ts";

/** Loads `dir/dpo.yaml` (when `args.yaml`) with the flags `args.argv`. */
export async function trainConfig(dir: string, args: { yaml: boolean; argv: string[] }): Promise<unknown> {
  const tc = await loadTrainConfig(args.yaml ? `${dir}/dpo.yaml` : undefined, args.argv, {
    printWarnings: false,
  });
  return { lossType: tc.config.lossType, model: tc.script.modelNameOrPath, peft: tc.peftConfig !== null };
}
