import assert from "node:assert/strict";
import { smoothed } from "../src/plot/chart.ts";
import { niceTicks, shortNumber, tickLabel } from "../src/plot/svg.ts";
import {
  type LogEntry,
  parseMetricsJsonl,
  parseTrainerState,
  PlotError,
  plotTraining,
  readTrainingLog,
  smoothingFor,
  trainingSvg,
} from "../src/plot/training.ts";

// A log_history in Hugging Face's layout: train logs at steps 2..10, evaluations at 5 and 10, the final summary.
const HISTORY: LogEntry[] = [
  {
    loss: 0.6931,
    "rewards/chosen": 0,
    "rewards/rejected": 0,
    "rewards/accuracies": 0.5,
    "rewards/margins": 0,
    epoch: 0.2,
    step: 2,
  },
  {
    loss: 0.61,
    "rewards/chosen": 0.1,
    "rewards/rejected": -0.2,
    "rewards/accuracies": 0.625,
    "rewards/margins": 0.3,
    epoch: 0.4,
    step: 4,
  },
  {
    eval_loss: 0.64,
    "eval_rewards/chosen": 0.05,
    "eval_rewards/rejected": -0.1,
    "eval_rewards/accuracies": 0.6,
    "eval_rewards/margins": 0.15,
    epoch: 0.5,
    step: 5,
  },
  {
    loss: 0.45,
    "rewards/chosen": 0.2,
    "rewards/rejected": -0.6,
    "rewards/accuracies": 0.75,
    "rewards/margins": 0.8,
    epoch: 0.6,
    step: 6,
  },
  {
    loss: 0.3,
    "rewards/chosen": 0.3,
    "rewards/rejected": -1.2,
    "rewards/accuracies": 0.875,
    "rewards/margins": 1.5,
    epoch: 0.8,
    step: 8,
  },
  {
    loss: 0.2,
    "rewards/chosen": 0.35,
    "rewards/rejected": -1.8,
    "rewards/accuracies": 1,
    "rewards/margins": 2.15,
    epoch: 1,
    step: 10,
  },
  {
    eval_loss: 0.25,
    "eval_rewards/chosen": 0.3,
    "eval_rewards/rejected": -1.5,
    "eval_rewards/accuracies": 0.95,
    "eval_rewards/margins": 1.8,
    epoch: 1,
    step: 10,
  },
  { train_runtime: 3.5, train_loss: 0.45, epoch: 1, step: 10 },
];

/** The panels of an SVG: metric → its markup. */
function panels(svg: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<g class="panel" data-metric="([^"]+)"/g;
  const starts = [...svg.matchAll(re)];
  starts.forEach((m, i) => {
    const end = i + 1 < starts.length ? starts[i + 1].index! : svg.length;
    out.set(m[1], svg.slice(m.index!, end));
  });
  return out;
}

/** The series of a panel: id → {points (from data-points), path coordinates}. */
function seriesOf(panel: string): Map<string, { n: number; subpaths: number; xy: [number, number][] }> {
  const out = new Map();
  for (
    const m of panel.matchAll(
      /<g class="series" data-series="([^"]+)" data-points="(\d+)"><path d="([^"]+)"/g,
    )
  ) {
    const d = m[3];
    const xy = [...d.matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])]);
    out.set(m[1], { n: Number(m[2]), subpaths: (d.match(/M/g) ?? []).length, xy });
  }
  return out;
}

function legendTexts(panel: string): string[] {
  return [...panel.matchAll(/class="legend-label">([^<]*)</g)].map((m) => m[1]);
}

/** Every element is closed in order (a small well-formedness check; the SVG has no comments or CDATA). */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `closing </${name}> at ${m.index}`);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
}

Deno.test("niceTicks, tickLabel and shortNumber", () => {
  assert.deepEqual(niceTicks(0, 1, 5), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], step: 0.2 });
  assert.deepEqual(niceTicks(0, 0.693, 5).ticks, [0, 0.2, 0.4, 0.6]);
  assert.deepEqual(niceTicks(-3.45, 0.52, 5), { ticks: [-3, -2, -1, 0], step: 1 });
  assert.deepEqual(niceTicks(1, 60, 6), { ticks: [10, 20, 30, 40, 50, 60], step: 10 });
  // a flat range is widened rather than giving a zero step
  const flat = niceTicks(2, 2, 5);
  assert.ok(flat.step > 0 && flat.ticks.includes(2), JSON.stringify(flat));
  assert.equal(tickLabel(0.30000000000000004, 0.1), "0.3");
  assert.equal(tickLabel(60, 10), "60");
  assert.equal(tickLabel(0, 0.2), "0");
  assert.equal(tickLabel(2e-4, 1e-4), "2e-4");
  assert.equal(shortNumber(0.097453), "0.0975");
  assert.equal(shortNumber(-3.4512), "-3.45");
  assert.equal(shortNumber(1), "1");
  assert.equal(shortNumber(3e-5), "3.00e-5");
});

Deno.test("training.svg from a log_history: four panels, train and eval series, legends, axes, title", () => {
  const svg = trainingSvg(HISTORY, { title: "DPO training — run" });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox=/);
  assertBalanced(svg);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  assert.match(svg, /<title>DPO training — run<\/title>/);
  assert.match(svg, /DPO training — run<\/text>/);
  // the summary line: steps, loss and accuracy from first to last log, and the last evaluation
  const summary = /class="summary">([^<]*)</.exec(svg)![1];
  assert.match(summary, /^10 steps/);
  assert.match(summary, /loss 0\.693 → 0\.2/);
  assert.match(summary, /accuracy 50% → 100%/);
  assert.match(summary, /eval at step 10: loss 0\.25, accuracy 95%/);

  const p = panels(svg);
  assert.deepEqual([...p.keys()], ["loss", "rewards/margins", "rewards/accuracies", "rewards/chosen"]);
  for (const [metric, markup] of p) {
    // axes: the x label, tick labels on both axes, and a y label
    assert.match(markup, /class="axis-label">step</, metric);
    assert.ok((markup.match(/class="tick"/g) ?? []).length >= 6, metric);
    assert.equal((markup.match(/class="axis-label"/g) ?? []).length, 2, metric);
  }

  // loss: 5 train points (the summary entry's train_loss is not a loss point) and 2 eval points
  const loss = seriesOf(p.get("loss")!);
  assert.equal(loss.get("train")!.n, 5);
  assert.equal(loss.get("eval")!.n, 2);
  assert.deepEqual(legendTexts(p.get("loss")!), ["train 0.2", "eval 0.25"]);
  // the two series use different colours
  const colours = [...p.get("loss")!.matchAll(/<path d="[^"]+" fill="none" stroke="(#[0-9a-f]{6})"/g)].map((
    m,
  ) => m[1]);
  assert.equal(colours.length, 2);
  assert.notEqual(colours[0], colours[1]);

  // x is linear in the step (shared scale): steps 2, 4, 6, 8, 10 are evenly spaced, eval step 10 sits on train's
  const tx = loss.get("train")!.xy.map(([x]) => x);
  const dx = tx.slice(1).map((x, i) => x - tx[i]);
  for (const d of dx) assert.ok(Math.abs(d - dx[0]) < 0.02, String(dx));
  assert.ok(Math.abs(loss.get("eval")!.xy[1][0] - tx[4]) < 0.02);
  // y is linear in the value and points up: (y_i - y_j) / (v_i - v_j) is one negative constant
  const values = [0.6931, 0.61, 0.45, 0.3, 0.2];
  const ty = loss.get("train")!.xy.map(([, y]) => y);
  const k = (ty[4] - ty[0]) / (values[4] - values[0]);
  assert.ok(k < 0);
  for (let i = 1; i < 4; i++) assert.ok(Math.abs((ty[i] - ty[0]) / (values[i] - values[0]) - k) < 0.05 * -k);
  // the same x positions in every panel
  const acc = seriesOf(p.get("rewards/accuracies")!);
  assert.deepEqual(acc.get("train")!.xy.map(([x]) => x), tx);

  // accuracies: a fixed 0..1 axis with a chance line
  const accPanel = p.get("rewards/accuracies")!;
  for (const t of ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]) {
    assert.match(accPanel, new RegExp(`class="tick">${t}<`));
  }
  assert.match(accPanel, />chance</);
  assert.deepEqual(legendTexts(accPanel), ["train 1", "eval 0.95"]);
  // margins: a zero line
  assert.match(p.get("rewards/margins")!, /class="ref-line"/);
  assert.deepEqual(legendTexts(p.get("rewards/margins")!), ["train 2.15", "eval 1.8"]);

  // chosen/rejected: four series, rejected dashed
  const cr = p.get("rewards/chosen")!;
  assert.deepEqual([...seriesOf(cr).keys()], [
    "train-chosen",
    "train-rejected",
    "eval-chosen",
    "eval-rejected",
  ]);
  assert.deepEqual(legendTexts(cr), [
    "chosen 0.35",
    "rejected -1.8",
    "eval chosen 0.3",
    "eval rejected -1.5",
  ]);
  assert.equal((cr.match(/<path d="[^"]+" fill="none"[^>]*stroke-dasharray="6 4"/g) ?? []).length, 2);
});

Deno.test("a NaN breaks the line; missing metrics say so; a single point still draws", () => {
  const withNaN: LogEntry[] = [
    { loss: 0.69, step: 1 },
    { loss: 0.6, step: 2 },
    { loss: NaN, step: 3 },
    { loss: 0.5, step: 4 },
    { loss: 0.4, step: 5 },
  ];
  const svg = trainingSvg(withNaN);
  assertBalanced(svg);
  assert.doesNotMatch(svg, /NaN/);
  const loss = seriesOf(panels(svg).get("loss")!).get("train")!;
  assert.equal(loss.n, 4);
  assert.equal(loss.subpaths, 2);
  assert.deepEqual(seriesOf(panels(svg).get("loss")!).has("eval"), false);
  assert.match(panels(svg).get("rewards/margins")!, /class="no-data">no rewards\/margins in the logs</);

  const one = trainingSvg([{ loss: 0.69, "rewards/accuracies": 0.5, step: 1 }]);
  assertBalanced(one);
  assert.doesNotMatch(one, /NaN|Infinity/);
  assert.equal(seriesOf(panels(one).get("loss")!).get("train")!.n, 1);
  assert.match(panels(one).get("loss")!, /<circle /);
});

Deno.test("long runs get a debiased moving average over the faint logged values", () => {
  // by hand, weight 0.5: (0.5·1)/0.5 = 1; (0.25 + 0.5·2)/0.75 = 5/3; (0.625 + 0.5·3)/0.875 = 17/7
  const s = smoothed([[1, 1], [2, 2], [3, NaN], [4, 3]], 0.5);
  assert.deepEqual(s.map(([x]) => x), [1, 2, 3, 4]);
  assert.ok(Math.abs(s[0][1] - 1) < 1e-12);
  assert.ok(Math.abs(s[1][1] - 5 / 3) < 1e-12);
  assert.ok(Number.isNaN(s[2][1]));
  assert.ok(Math.abs(s[3][1] - 17 / 7) < 1e-12);
  assert.equal(smoothingFor(60), undefined);
  assert.equal(smoothingFor(100), 0.85);
  assert.equal(smoothingFor(1000), 0.9);

  const short = trainingSvg(HISTORY);
  assert.doesNotMatch(short, /class="smoothed"|moving average/);
  const long: LogEntry[] = Array.from({ length: 120 }, (_, i) => ({
    loss: 0.7 - i * 0.004 + (i % 2 ? 0.05 : -0.05),
    step: i + 1,
  }));
  const svg = trainingSvg(long);
  assertBalanced(svg);
  const train = /<g class="series" data-series="train" data-points="120">(.*?)<\/g>/.exec(svg)![1];
  assert.match(
    train,
    /^<path d="[^"]+"[^>]*stroke-opacity="0\.3"\/><path d="[^"]+"[^>]*class="smoothed"\/>$/,
  );
  assert.match(svg, /solid train lines: moving average; faint: logged values/);
});

Deno.test("log readers: trainer_state.json (Python NaN), metrics.jsonl, a resumed run's repeated step", () => {
  const state = parseTrainerState(
    '{"global_step": 2, "log_history": [{"loss": 0.7, "step": 1, "note": "x"}, {"loss": NaN, "step": 2}]}',
    "trainer_state.json",
  );
  assert.equal(state.length, 2);
  assert.ok(Number.isNaN(state[1].loss));
  assert.equal("note" in state[0], false);
  assert.throws(() => parseTrainerState('{"global_step": 2}', "x/trainer_state.json"), /no log_history/);

  const jsonl = parseMetricsJsonl(
    '{"loss": 0.7, "step": 1}\n\n{"loss": 0.6, "step": 2}\n{"eval_loss": 0.5, "step": 2}\n',
    "m",
  );
  assert.equal(jsonl.length, 3);
  assert.throws(
    () => parseMetricsJsonl('{"loss": 0.7, "step": 1}\n{oops\n', "out/metrics.jsonl"),
    /metrics\.jsonl line 2/,
  );

  // a resumed run logs steps 3 and 4 again: the later values are drawn, once
  const resumed: LogEntry[] = [1, 2, 3, 4, 3, 4, 5].map((step, i) => ({ loss: i < 4 ? 1 : 0.5, step }));
  const loss = seriesOf(panels(trainingSvg(resumed)).get("loss")!).get("train")!;
  assert.equal(loss.n, 5);
});

Deno.test("plotTraining: trainer_state.json first, then metrics.jsonl, then the newest checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-plot-" });
  try {
    await assert.rejects(plotTraining(dir), (e: Error) => {
      assert.ok(e instanceof PlotError);
      assert.match(e.message, /no trainer_state\.json, metrics\.jsonl or checkpoint-\*\/trainer_state\.json/);
      return true;
    });
    await assert.rejects(plotTraining(`${dir}/missing`), /no such folder/);

    // checkpoints only: checkpoint-10 is newer than checkpoint-9 (numeric, not text order)
    for (const [step, n] of [[9, 9], [10, 10]]) {
      await Deno.mkdir(`${dir}/checkpoint-${step}`);
      const history = Array.from({ length: n }, (_, i) => ({ loss: 0.7 - i * 0.01, step: i + 1 }));
      await Deno.writeTextFile(
        `${dir}/checkpoint-${step}/trainer_state.json`,
        JSON.stringify({ log_history: history }),
      );
    }
    assert.equal((await readTrainingLog(dir)).source, `${dir}/checkpoint-10/trainer_state.json`);
    const path = await plotTraining(dir);
    assert.equal(path, `${dir}/training.svg`);
    assert.match(await Deno.readTextFile(path), /class="summary">10 steps/);

    // metrics.jsonl (written as training runs) wins over checkpoints
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((s) => JSON.stringify({ loss: 0.7 / s, step: s })).join(
        "\n",
      ),
    );
    await plotTraining(dir);
    assert.match(await Deno.readTextFile(path), /class="summary">12 steps/);

    // trainer_state.json in the folder itself wins over both
    await Deno.writeTextFile(
      `${dir}/trainer_state.json`,
      JSON.stringify({ log_history: HISTORY }),
    );
    await plotTraining(dir);
    const svg = await Deno.readTextFile(path);
    assert.match(svg, /class="summary">10 steps/);
    assert.match(svg, /from [^<]*trainer_state\.json</);

    // an empty log is an error, not an empty picture
    await Deno.writeTextFile(`${dir}/trainer_state.json`, JSON.stringify({ log_history: [] }));
    await assert.rejects(plotTraining(dir), /no log entries with a step/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("webdpo plot OUTPUT_DIR through the CLI, and its usage errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-plot-cli-" });
  const main = new URL("../src/cli/main.ts", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", main, "plot", ...args] })
      .output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  };
  try {
    const empty = await run(dir);
    assert.equal(empty.code, 1);
    assert.match(empty.err, /^webdpo plot: .*no trainer_state\.json/m);
    assert.doesNotMatch(empty.err, /^\s+at /m);
    await Deno.writeTextFile(`${dir}/trainer_state.json`, JSON.stringify({ log_history: HISTORY }));
    const ok = await run(dir);
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out.trim(), `wrote ${dir}/training.svg`);
    assert.match(await Deno.readTextFile(`${dir}/training.svg`), /data-metric="rewards\/accuracies"/);
    const other = await run(dir, "--out", `${dir}/other.svg`);
    assert.equal(other.code, 0, other.err);
    await Deno.stat(`${dir}/other.svg`);
    const none = await run();
    assert.equal(none.code, 2);
    assert.match(none.err, /give exactly one OUTPUT_DIR/);
    const bad = await run(dir, "--wide");
    assert.equal(bad.code, 2);
    assert.match(bad.err, /unknown option '--wide'/);
    const help = await run("--help");
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: webdpo plot OUTPUT_DIR/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
