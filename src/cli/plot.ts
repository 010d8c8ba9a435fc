/**
 * `webdpo plot OUTPUT_DIR [--out FILE]`: writes `OUTPUT_DIR/training.svg` (loss, reward margin, reward accuracy
 * and chosen/rejected rewards against the step, training and evaluation) from the run's `trainer_state.json` or
 * `metrics.jsonl`. See src/plot/training.ts.
 *
 * @module
 */
import { WebDPOError } from "../gpu/errors.ts";
import { plotTraining } from "../plot/training.ts";

export { plotTraining };

export const PLOT_USAGE = `usage: webdpo plot OUTPUT_DIR [--out FILE]

Draws OUTPUT_DIR/training.svg from the run's logs: OUTPUT_DIR/trainer_state.json (log_history), else
OUTPUT_DIR/metrics.jsonl, else the newest OUTPUT_DIR/checkpoint-*/trainer_state.json. Panels: loss, reward
margin, reward accuracy and the chosen/rejected rewards against the step, training and evaluation series.

  --out FILE   write the SVG here instead of OUTPUT_DIR/training.svg
  -h, --help   this help`;

/** `webdpo plot ARGS`: 0 written (or help), 2 a bad command line, 1 no usable logs. */
export async function plotCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(PLOT_USAGE);
    return 0;
  }
  const dirs: string[] = [];
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--out" || a.startsWith("--out=")) {
      out = a === "--out" ? argv[++i] : a.slice(6);
      if (!out) {
        console.error(`webdpo plot: --out needs a file path\n\n${PLOT_USAGE}`);
        return 2;
      }
    } else if (a.startsWith("-")) {
      console.error(`webdpo plot: unknown option '${a}'\n\n${PLOT_USAGE}`);
      return 2;
    } else dirs.push(a);
  }
  if (dirs.length !== 1) {
    console.error(
      `webdpo plot: give exactly one OUTPUT_DIR (got ${
        dirs.length ? dirs.join(" ") : "none"
      })\n\n${PLOT_USAGE}`,
    );
    return 2;
  }
  try {
    const path = await plotTraining(dirs[0], { out });
    console.log(`wrote ${path}`);
    return 0;
  } catch (e) {
    if (
      e instanceof WebDPOError || e instanceof Deno.errors.PermissionDenied ||
      e instanceof Deno.errors.NotFound
    ) {
      console.error(`webdpo plot: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
