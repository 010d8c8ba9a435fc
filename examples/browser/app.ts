/// <reference lib="dom" />
/**
 * The in-tab demo (examples/browser/index.html): the demo's DPO run of examples/tiny-chat, or of a model folder
 * and JSONL pairs the user picks, on the page's WebGPU adapter. `deno task build:web` bundles this file into
 * dist/web/browser_demo.js beside the library.
 *
 * Files: the model is read from `../tiny-chat/` by URL (range reads of model.safetensors), or from the picked
 * files; outputs (the run's metrics and the checkpoint a Stop saves, then the trained model or adapter) go to the
 * Origin Private File System, from where the page offers each file for download.
 *
 * URL parameters (the browser test uses them): `steps` (default 300), `held_out` (questions measured; default
 * all), `lora` (1: train a LoRA adapter instead of the whole model), `autostart` (1: start on load).
 *
 * @module
 */
import {
  browserFiles,
  browserHost,
  consoleSink,
  type DirectoryHandleLike,
  DPOConfig,
  DPOTrainer,
  init,
  loadDataset,
  loadModel,
  loadTokenizer,
  type Mount,
  opfsRoot,
  saveAdapter,
  saveModel,
  setPlatform,
  trainingSvg,
} from "../../mod.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { accuracy, type Answer, answerQuestions, preferenceAccuracy } from "../../demo/measure.ts";
import { parseQuestion, type PreferenceRow, type Question, questionText } from "../../demo/task.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

/** What the page did, for the browser test and the curious (window.webdpoDemo). */
const report = {
  state: "idle",
  adapter: "",
  steps: 0,
  trainSeconds: 0,
  losses: [] as number[],
  history: [] as Record<string, number>[],
  before: null as Measurement | null,
  after: null as Measurement | null,
  interrupted: false,
  files: [] as string[],
  error: "",
};
(globalThis as unknown as { webdpoDemo: typeof report }).webdpoDemo = report;

interface Measurement {
  exact: number | null;
  preference: number;
  answers: string[];
}

function setState(state: string, message: string): void {
  report.state = state;
  document.body.dataset.state = state;
  $("status").textContent = message;
}

function fail(message: string): void {
  report.error = message;
  setState("error", message);
  $("start").toggleAttribute("disabled", true);
  $("stop").toggleAttribute("disabled", true);
}

const pct = (x: number | null) => x === null || !Number.isFinite(x) ? "—" : `${(100 * x).toFixed(1)}%`;

/** The picked model folder's files, mounted one by one at /picked/<path inside the folder>. */
let pickedModel: Record<string, Mount> | null = null;
/** The picked JSONL pairs, mounted at /pairs/<name>. */
let pickedPairs: File | null = null;

$("pick-model").addEventListener("change", (e) => {
  const list = (e.target as HTMLInputElement).files;
  if (!list?.length) return;
  pickedModel = {};
  for (const f of Array.from(list)) {
    const rel = (f.webkitRelativePath || f.name).split("/").slice(1).join("/") || f.name;
    pickedModel[`/picked/${rel}`] = f;
  }
  $("picked").textContent = `model: ${list.length} files` +
    (pickedPairs ? `, pairs: ${pickedPairs.name}` : "");
});
$("pick-pairs").addEventListener("change", (e) => {
  pickedPairs = (e.target as HTMLInputElement).files?.[0] ?? null;
  $("picked").textContent = (pickedModel ? "model: picked folder" : "model: tiny-chat") +
    (pickedPairs ? `, pairs: ${pickedPairs.name}` : "");
});

/** The page's outputs: a folder of the Origin Private File System. */
async function outputFolder(): Promise<DirectoryHandleLike> {
  const root = await opfsRoot();
  await root.removeEntry("webdpo-demo", { recursive: true }).catch(() => {});
  return await root.getDirectoryHandle("webdpo-demo", { create: true });
}

async function measure(
  model: CausalLM,
  tokenizer: Tokenizer,
  questions: Question[],
  pairs: PreferenceRow[],
): Promise<Measurement> {
  let answers: Answer[] = [];
  if (questions.length) answers = await answerQuestions(model, tokenizer, questions);
  return {
    exact: questions.length ? accuracy(answers) : null,
    preference: await preferenceAccuracy(model, tokenizer, pairs),
    answers: answers.slice(0, 3).map((a) => a.text),
  };
}

function showResults(questions: string[]): void {
  const b = report.before!, a = report.after;
  const rows = [
    ["held-out", "before", "after"],
    ["exact-answer accuracy (greedy)", pct(b.exact), a ? pct(a.exact) : "…"],
    ["preference accuracy", pct(b.preference), a ? pct(a.preference) : "…"],
  ];
  $("results").innerHTML = rows.map((r, i) =>
    `<tr>${r.map((c) => i === 0 ? `<th>${c}</th>` : `<td>${c}</td>`).join("")}</tr>`
  ).join("");
  $("answers").innerHTML = questions.slice(0, b.answers.length).map((q, i) =>
    `<li><b>${escape(q)}</b><br>before: ${escape(b.answers[i])}<br>after: ${
      a ? escape(a.answers[i] ?? "") : "…"
    }</li>`
  ).join("");
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Offers every file of `dir` (an OPFS folder) as a download link. */
async function offerDownloads(dir: DirectoryHandleLike, what: string): Promise<void> {
  const links: string[] = [];
  for await (const [name, h] of dir.entries()) {
    if (h.kind !== "file") continue;
    const url = URL.createObjectURL(await h.getFile());
    links.push(`<a download="${escape(name)}" href="${url}" data-file="${escape(name)}">${escape(name)}</a>`);
    report.files.push(name);
  }
  $("downloads").innerHTML = `<p>${what} (save every file into one folder):</p>` + links.sort().join(" ");
}

let trainer: DPOTrainer | null = null;

async function run(): Promise<void> {
  $("start").toggleAttribute("disabled", true);
  report.losses = [];
  report.files = [];
  const out = await outputFolder();
  const mounts: Record<string, Mount> = {
    "/out": out,
    "/model": new URL("../tiny-chat/", location.href).href,
  };
  const modelDir = pickedModel ? "/picked" : "/model";
  if (pickedModel) Object.assign(mounts, pickedModel);
  if (pickedPairs) mounts[`/pairs/${pickedPairs.name}`] = pickedPairs;
  setPlatform({ files: browserFiles({ mounts }), host: browserHost, sink: consoleSink });

  setState("loading", `loading ${pickedModel ? "the picked model" : "examples/tiny-chat"}…`);
  const model = await loadModel(modelDir);
  const tokenizer = await loadTokenizer(modelDir);
  const trainPath = pickedPairs ? `/pairs/${pickedPairs.name}` : "/model/data/dpo_train.jsonl";
  const trainDataset = await loadDataset(trainPath);
  let pairs: PreferenceRow[];
  let questions: Question[] = [];
  if (pickedPairs) {
    pairs = (await trainDataset.toArray()).slice(0, 64) as unknown as PreferenceRow[];
  } else {
    pairs = (await (await loadDataset("/model/data/dpo_test.jsonl")).toArray()) as unknown as PreferenceRow[];
    const seen = new Set<string>();
    for (const r of pairs) {
      const q = parseQuestion(r.prompt?.[0]?.content ?? "");
      if (q && !seen.has(questionText(q))) {
        seen.add(questionText(q));
        questions.push(q);
      }
    }
    const heldOut = Number(params.get("held_out") ?? 0);
    if (heldOut > 0) questions = questions.slice(0, heldOut);
    const keep = new Set(questions.map(questionText));
    pairs = pairs.filter((r) => keep.has(r.prompt[0].content));
  }

  setState("before", "measuring before DPO…");
  report.before = await measure(model, tokenizer, questions, pairs);
  const shown = questions.length
    ? questions.map(questionText)
    : pairs.map((p) => String(p.prompt?.[0]?.content ?? ""));
  showResults(shown);

  const steps = Number($<HTMLInputElement>("steps").value) || 300;
  const lora = $<HTMLInputElement>("lora").checked;
  const args = new DPOConfig({
    outputDir: "/out/run",
    lossType: "sigmoid",
    beta: 1,
    learningRate: lora ? 2e-3 : 5e-4,
    rpoAlpha: 1,
    maxSteps: steps,
    perDeviceTrainBatchSize: 16,
    lrSchedulerType: "constant",
    loggingSteps: 1,
    maxLength: 96,
    maxPromptLength: 64,
    seed: 42,
    saveStrategy: "no",
  });
  trainer = new DPOTrainer({
    model,
    tokenizer,
    args,
    trainDataset,
    ...(lora ? { peftConfig: { r: 8, loraAlpha: 16, targetModules: "all-linear" } } : {}),
    log: (line) => console.log(line),
    callbacks: [{
      onLog(state, logs) {
        if (Number.isFinite(logs.loss)) report.losses.push(logs.loss);
        report.history = state.logHistory;
        report.steps = state.globalStep;
        $("chart").innerHTML = trainingSvg(state.logHistory, { title: "DPO in this tab" });
        setState("training", `training: step ${state.globalStep} of ${steps}, loss ${logs.loss?.toFixed(4)}`);
      },
      // let the page paint and take clicks (Stop) between steps
      onStepEnd: () => new Promise((r) => setTimeout(r, 0)),
    }],
  });
  $("stop").toggleAttribute("disabled", false);
  setState("training", `training: ${steps} steps…`);
  const t0 = performance.now();
  const result = await trainer.train();
  report.trainSeconds = (performance.now() - t0) / 1000;
  report.interrupted = result.interrupted ?? false;
  $("stop").toggleAttribute("disabled", true);
  trainer.dispose();
  trainer = null;

  setState("after", "measuring after DPO…");
  report.after = await measure(model, tokenizer, questions, pairs);
  showResults(shown);
  if (lora) await saveAdapter(model, "/out/adapter");
  else await saveModel(model, "/out/model", { tokenizer });
  await offerDownloads(
    await out.getDirectoryHandle(lora ? "adapter" : "model"),
    lora ? "the trained LoRA adapter (a PEFT folder)" : "the trained model (a Hugging Face folder)",
  );
  setState(
    "done",
    `done: ${report.steps} steps in ${report.trainSeconds.toFixed(1)} s${
      report.interrupted ? " (stopped; a checkpoint was saved)" : ""
    }`,
  );
}

$("stop").addEventListener("click", () => {
  trainer?.requestStop();
  $("stop").toggleAttribute("disabled", true);
  $("status").textContent = "stopping after this step…";
});
$("start").addEventListener("click", () => {
  run().catch((e) => fail(`error: ${e instanceof Error ? e.message : e}`));
});

async function start(): Promise<void> {
  if (params.has("steps")) $<HTMLInputElement>("steps").value = params.get("steps")!;
  if (params.get("lora") === "1") $<HTMLInputElement>("lora").checked = true;
  if (!("gpu" in navigator)) {
    fail(
      "This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge (113 or later) or " +
        "another browser with WebGPU switched on; on Linux, Chrome may need --enable-unsafe-webgpu. The page " +
        "must come from https:// or http://localhost.",
    );
    return;
  }
  try {
    const info = await init();
    report.adapter = info.adapterName;
    $("adapter").textContent = `adapter: ${info.adapterName || info.vendor || "unnamed"}${
      info.isFallbackAdapter ? " (software fallback)" : ""
    }`;
  } catch (e) {
    fail(`No usable WebGPU adapter: ${e instanceof Error ? e.message : e}`);
    return;
  }
  setState("idle", "ready");
  $("start").toggleAttribute("disabled", false);
  if (params.get("autostart") === "1") $("start").click();
}

start();
