/**
 * `deno task build:web [--outdir DIR]`: the browser build of the library, an ES module bundle made by esbuild
 * (npm:esbuild, pinned in deno.json) from mod.ts, in `dist/web/` by default:
 *
 * - `webdpo.js`: the library (mod.ts), with its npm dependencies bundled in (code it shares with the worker in
 *   `chunk-*.js`);
 * - `tokenize_worker.js`: the module of the tokenizing Web Workers (`dataset_num_proc` > 1);
 * - `browser_demo.js`: the page examples/browser/index.html (its app.ts, sharing the library's chunks);
 * - `kernels/`: the WGSL kernel files, fetched at `init()` relative to the bundle.
 *
 * Four files are swapped for browser versions while bundling (`WEB_SWAPS`), so nothing of Deno's or Node's
 * platform gets in: src/io/default.ts (the platform: the browser's), src/gpu/kernels_dir.ts (kernels beside the
 * bundle), src/data/tokenize_worker_url.ts (the worker's bundle) and src/models/hub_download.ts (no hub
 * downloads in a tab: `@huggingface/hub`'s snapshotDownload writes with Node's file system). The npm packages are resolved from a `node_modules`
 * folder that `deno install --frozen` makes in a temporary folder from deno.json's import map and deno.lock
 * (the same versions and hashes as the library uses under Deno), so the repository gets no node_modules.
 *
 * @module
 */
import * as esbuild from "esbuild";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Files replaced by their browser versions in the bundle. */
export const WEB_SWAPS: Record<string, string> = {
  "src/io/default.ts": "src/io/default_web.ts",
  "src/gpu/kernels_dir.ts": "src/gpu/kernels_dir_web.ts",
  "src/data/tokenize_worker_url.ts": "src/data/tokenize_worker_url_web.ts",
  "src/models/hub_download.ts": "src/models/hub_download_web.ts",
};

/** A node_modules folder holding deno.json's npm imports at deno.lock's versions, in a temporary folder. */
async function installNpmPackages(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-web-build-" });
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({ imports: config.imports, nodeModulesDir: "auto" }, null, 2),
  );
  await Deno.copyFile(`${root}/deno.lock`, `${dir}/deno.lock`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--frozen", "--quiet"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno install of the npm packages failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return dir;
}

/** Copies kernels/ (its .wgsl files, folders kept) to `to`. Returns how many files. */
async function copyKernels(from: string, to: string): Promise<number> {
  await Deno.mkdir(to, { recursive: true });
  let n = 0;
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) n += await copyKernels(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile && e.name.endsWith(".wgsl")) {
      await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
      n++;
    }
  }
  return n;
}

/** What a build made. */
export interface WebBuild {
  outdir: string;
  /** The output files, relative to outdir (kernels not listed). */
  files: string[];
  kernels: number;
  warnings: string[];
}

/** Builds the browser bundle into `outdir` (emptied first; an absolute path). */
export async function buildWeb(outdir = `${root}/dist/web`): Promise<WebBuild> {
  const modules = await installNpmPackages();
  try {
    await Deno.remove(outdir, { recursive: true }).catch(() => {});
    await Deno.mkdir(outdir, { recursive: true });
    const swaps = new Map(Object.entries(WEB_SWAPS).map(([a, b]) => [`${root}/${a}`, `${root}/${b}`]));
    const swap: esbuild.Plugin = {
      name: "webdpo-browser-files",
      setup(build) {
        build.onResolve({ filter: /\.ts$/ }, async (args) => {
          if (args.pluginData === "swapped" || !args.path.startsWith(".")) return undefined;
          const r = await build.resolve(args.path, {
            kind: args.kind,
            importer: args.importer,
            resolveDir: args.resolveDir,
            pluginData: "swapped",
          });
          const to = swaps.get(r.path);
          return to ? { path: to } : undefined;
        });
      },
    };
    const result = await esbuild.build({
      entryPoints: {
        webdpo: `${root}/mod.ts`,
        tokenize_worker: `${root}/src/data/tokenize_worker.ts`,
        browser_demo: `${root}/examples/browser/app.ts`,
      },
      outdir,
      absWorkingDir: outdir, // so the metafile names outputs relative to outdir
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      nodePaths: [`${modules}/node_modules`],
      plugins: [swap],
      metafile: true,
      logLevel: "silent",
      legalComments: "linked",
    });
    const files = Object.keys(result.metafile.outputs);
    const kernels = await copyKernels(`${root}/kernels`, `${outdir}/kernels`);
    const warnings = result.warnings.map((w) => `${w.location?.file ?? ""}: ${w.text}`);
    return { outdir, files: files.sort(), kernels, warnings };
  } finally {
    await esbuild.stop();
    await Deno.remove(modules, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--outdir");
  const outdir = i >= 0
    ? await Deno.realPath(".").then((cwd) => new URL(Deno.args[i + 1], `file://${cwd}/`).pathname)
    : undefined;
  const b = await buildWeb(outdir);
  for (const w of b.warnings) console.warn(`warning: ${w}`);
  console.log(`${b.outdir}: ${b.files.join(", ")}, and ${b.kernels} kernel files in kernels/`);
}
