/**
 * `deno task demo`: DPO changing a tiny chat model's behaviour, end to end (see demo/run.ts).
 *
 * usage: deno task demo [--steps N] [--loss_type NAME] [--beta X] [--lr X] [--output_dir DIR] [--help]
 */
import { demoUsage, DemoUsageError, parseDemoArgs, runDemo } from "./run.ts";
import { WebDPOError } from "../src/gpu/errors.ts";

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseDemoArgs(argv);
  } catch (e) {
    if (e instanceof DemoUsageError) {
      console.error(`demo: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (options === null) {
    console.log(demoUsage());
    return 0;
  }
  try {
    await runDemo(options);
    return 0;
  } catch (e) {
    if (e instanceof WebDPOError) {
      console.error(`demo: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
