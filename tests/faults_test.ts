/**
 * Faults a training run must survive, each in a child process (faults_child.ts, or `webdpo train`):
 * - `kill -9` inside a checkpoint write (the child pauses inside the write, so the kill lands there every time):
 *   the previous checkpoint stays intact, and a resume from it ends bit for bit like an uninterrupted run; and
 *   between the two renames of a save that replaces a checkpoint of the same step: the old one is put back;
 * - a truncated or damaged checkpoint file, each file of a checkpoint in turn: the resume is refused with a
 *   CheckpointError naming the file;
 * - a full disk during a save, injected as ENOSPC and, where the test may mount one, a real small tmpfs: a
 *   CheckpointError that says so, and the previous checkpoint intact;
 * - a dataset row that fails late in the file (malformed JSON, a chat template that raises): the error names the
 *   file and the line, and the run stops before its first step;
 * - the GPU device lost mid-run and during a save: a DeviceLostError naming the checkpoint to resume from, which
 *   resumes in a new process, bit for bit.
 *
 * The uninterrupted run (4 steps, a checkpoint every 2) is made once and compared with.
 */
import assert from "node:assert/strict";
import { CHECKPOINT_FILES, removeTemporaryCheckpoints } from "../src/train/checkpoint.ts";
import { MANIFEST_FILE, verifyCheckpoint } from "../src/train/checkpoint_manifest.ts";
import { initModel } from "../src/models/init.ts";
import { saveModel } from "../src/models/loader.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import type { Spec } from "./faults_child.ts";
import { charTokenizerFiles, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const CHILD = new URL("./faults_child.ts", import.meta.url).pathname;
const MAIN = new URL("../src/cli/main.ts", import.meta.url).pathname;
const ENV = { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" };
const root = await Deno.makeTempDir({ prefix: "webdpo-faults-" });
const decoder = new TextDecoder();

interface ChildRun {
  code: number;
  out: string;
  /** The RESULT line's value, or the ERROR line's. */
  result?: Record<string, unknown>;
  error?: { name: string; webdpo: boolean; message: string; stack?: string };
}

function parse(code: number, out: string): ChildRun {
  const line = (tag: string) => out.split("\n").find((l) => l.startsWith(`${tag} `))?.slice(tag.length + 1);
  const result = line("RESULT");
  const error = line("ERROR");
  return {
    code,
    out,
    result: result ? JSON.parse(result) : undefined,
    error: error ? JSON.parse(error) : undefined,
  };
}

/** A spec with the run every test shares: 4 steps, a checkpoint every 2. */
function spec(outputDir: string, extra: Partial<Spec> = {}): Spec {
  return { outputDir, maxSteps: 4, saveSteps: 2, ...extra };
}

/** Runs the child to its end. */
async function child(s: Spec): Promise<ChildRun> {
  const args = ["run", "-A", CHILD, JSON.stringify(s)];
  const r = await new Deno.Command(Deno.execPath(), { args, env: ENV }).output();
  return parse(r.code, decoder.decode(r.stdout) + decoder.decode(r.stderr));
}

/** Runs the child until it prints PAUSED (inside the write or rename the spec names), then sends it SIGKILL. */
async function killWhenPaused(s: Spec): Promise<{ signal: Deno.Signal | null; pausedIn: string }> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, JSON.stringify(s)],
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(proc.stderr).text();
  let out = "";
  let pausedIn: string | null = null;
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (pausedIn === null) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
      pausedIn = /^PAUSED (.+)$/m.exec(out)?.[1] ?? null;
    }
    if (pausedIn !== null) proc.kill("SIGKILL");
  } finally {
    await reader.cancel();
  }
  const status = await proc.status;
  assert.ok(pausedIn, `the child never paused; it printed:\n${out}\n${await stderr}`);
  await stderr;
  return { signal: status.signal, pausedIn };
}

let baselineRun: Promise<ChildRun> | null = null;
/** The uninterrupted run, in `root/full` (made once). */
function baseline(): Promise<ChildRun> {
  baselineRun ??= child(spec(`${root}/full`)).then((r) => {
    assert.equal(r.code, 0, r.out);
    return r;
  });
  return baselineRun;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The entries of a folder, sorted (temporary checkpoint folders under a fixed name). */
async function entries(dir: string): Promise<string[]> {
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name.replace(/\.tmp-\w+$/, ".tmp-*"));
  return names.sort();
}

/**
 * Checkpoint `dir` holds what the uninterrupted run's checkpoint of the same step holds, byte for byte (but
 * training_args.json, which names the output folder, and so the manifest), and passes its manifest.
 */
async function assertIntact(dir: string, step: number): Promise<void> {
  const like = `${root}/full/checkpoint-${step}`;
  assert.deepEqual(await entries(dir), await entries(like));
  for (const f of await entries(like)) {
    if (f === CHECKPOINT_FILES.args || f === MANIFEST_FILE) continue;
    assert.deepEqual(await Deno.readFile(`${dir}/${f}`), await Deno.readFile(`${like}/${f}`), `${dir}/${f}`);
  }
  assert.equal(await verifyCheckpoint(dir), true);
}

/** A resumed run ended like the uninterrupted one: every logged value, the mean loss, every weight. */
async function assertSameAsBaseline(r: ChildRun): Promise<void> {
  assert.equal(r.code, 0, r.out);
  const full = (await baseline()).result!;
  assert.equal(r.result!.globalStep, 4);
  assert.deepEqual(r.result!.history, full.history);
  assert.equal(r.result!.trainingLoss, full.trainingLoss);
  assert.equal(r.result!.weights, full.weights, "the final weights, bit for bit");
}

Deno.test(
  "kill -9 inside a checkpoint write leaves the previous checkpoint intact; resuming from it is bit-exact",
  gpuTest,
  async () => {
    // killed inside the write of the last file of checkpoint-4 (ref_model.safetensors, TR-DPO's reference):
    // every other file is in the temporary folder, this one is partial
    const out = `${root}/kill`;
    const file = CHECKPOINT_FILES.ref;
    const [, { signal, pausedIn }] = await Promise.all([
      baseline(),
      killWhenPaused(spec(out, { pauseWriting: `/\\.checkpoint-4\\.tmp-\\w+/ref_model\\.safetensors$` })),
    ]);
    assert.equal(signal, "SIGKILL");
    assert.deepEqual(await entries(out), [".checkpoint-4.tmp-*", "checkpoint-2", "metrics.jsonl"]);
    const temporary = pausedIn.slice(0, -file.length - 1);
    for (const f of await entries(`${root}/full/checkpoint-2`)) {
      if (f !== MANIFEST_FILE) assert.ok(await exists(`${temporary}/${f}`), `${f} was written`);
    }
    assert.ok((await Deno.stat(pausedIn)).size < (await Deno.stat(`${root}/full/checkpoint-4/${file}`)).size);
    await assertIntact(`${out}/checkpoint-2`, 2);
    // a new process resumes from checkpoint-2 and ends like the uninterrupted run
    const resumed = await child(spec(out, { resume: true }));
    await assertSameAsBaseline(resumed);
    assert.match(resumed.out, new RegExp(`resuming from ${out}/checkpoint-2 at step 2`));
    assert.deepEqual(await entries(out), ["checkpoint-2", "checkpoint-4", "metrics.jsonl"]);
  },
);

Deno.test(
  "kill -9 while a save replaces a checkpoint of the same step: the old one is put back",
  gpuTest,
  async () => {
    await baseline();
    // an earlier run's checkpoint-2, which a new run into the same folder replaces: killed after the old one was
    // moved aside and before the new one took its name
    const out = `${root}/replace`;
    await Deno.mkdir(`${out}/checkpoint-2`, { recursive: true });
    const like = `${root}/full/checkpoint-2`;
    for (const f of await entries(like)) await Deno.copyFile(`${like}/${f}`, `${out}/checkpoint-2/${f}`);
    const { signal } = await killWhenPaused(spec(out, { pauseRenaming: `/\\.checkpoint-2\\.tmp-old\\w+$` }));
    assert.equal(signal, "SIGKILL");
    assert.deepEqual(await entries(out), [".checkpoint-2.tmp-*", ".checkpoint-2.tmp-*", "metrics.jsonl"]);
    // the next run's cleanup puts the old checkpoint back, whole, and removes the new one's temporary folder
    assert.equal((await removeTemporaryCheckpoints(out)).length, 1);
    assert.deepEqual(await entries(out), ["checkpoint-2", "metrics.jsonl"]);
    for (const f of await entries(like)) {
      assert.deepEqual(
        await Deno.readFile(`${out}/checkpoint-2/${f}`),
        await Deno.readFile(`${like}/${f}`),
        f,
      );
    }
  },
);

Deno.test(
  "a truncated or damaged checkpoint file: resume refuses with a CheckpointError naming the file",
  gpuTest,
  async () => {
    await baseline();
    const source = `${root}/full/checkpoint-2`;
    const files = await entries(source);
    // every kind of file a DPO checkpoint holds: the model folder, the loop's files, bco_pair's and TR-DPO's
    for (const f of [...Object.values(CHECKPOINT_FILES), "tokenizer.json", MANIFEST_FILE]) {
      if (!f.startsWith("adapter_")) assert.ok(files.includes(f), `the checkpoint holds ${f}`);
    }
    const damages = {
      truncated: (b: Uint8Array) => b.subarray(0, b.length >> 1),
      changed: (b: Uint8Array) => {
        const c = b.slice();
        c[c.length >> 1] ^= 0x01;
        return c;
      },
    };
    const attempts: { dir: string; file: string }[] = [];
    for (const file of files) {
      for (const [kind, damage] of Object.entries(damages)) {
        const dir = `${root}/damaged/${kind}-${file}/checkpoint-2`;
        await Deno.mkdir(dir, { recursive: true });
        for (const f of files) await Deno.copyFile(`${source}/${f}`, `${dir}/${f}`);
        await Deno.writeFile(`${dir}/${file}`, damage(await Deno.readFile(`${source}/${file}`)));
        attempts.push({ dir, file });
      }
    }
    // and an undamaged copy, which resumes, as does one without a manifest (written before webdpo had one)
    const intact = `${root}/damaged/intact/checkpoint-2`;
    const legacy = `${root}/damaged/legacy/checkpoint-2`;
    for (const dir of [intact, legacy]) {
      await Deno.mkdir(dir, { recursive: true });
      for (const f of files) await Deno.copyFile(`${source}/${f}`, `${dir}/${f}`);
    }
    await Deno.remove(`${legacy}/${MANIFEST_FILE}`);
    const r = await child(
      spec(`${root}/damaged-out`, { attempts: [...attempts.map((a) => a.dir), intact, legacy] }),
    );
    assert.equal(r.code, 0, r.out);
    const results = r.result as unknown as {
      path: string;
      ok?: ChildRun["result"];
      error?: ChildRun["error"];
    }[];
    const accepted = results.filter((x, i) => i < attempts.length && !x.error).map((x) => x.path);
    assert.deepEqual(accepted, [], "damaged checkpoints were resumed from");
    for (const [i, { dir, file }] of attempts.entries()) {
      const e = results[i].error!;
      assert.equal(e.name, "CheckpointError", `${dir}: ${e.message}`);
      assert.ok(
        e.message.includes(dir) && e.message.includes(file),
        `${dir}: the error names ${file}: ${e.message}`,
      );
    }
    for (const r of results.slice(attempts.length)) {
      assert.equal(r.ok?.weights, (await baseline()).result!.weights, JSON.stringify(r));
    }
  },
);

/** The bytes a checkpoint takes on a file system of 4 KiB pages. */
async function pagedSize(dir: string): Promise<number> {
  let n = 4096;
  for await (const e of Deno.readDir(dir)) {
    n += Math.ceil((await Deno.stat(`${dir}/${e.name}`)).size / 4096) * 4096;
  }
  return n;
}

/** The error of a save that hit a full disk at step 4, with checkpoint-2 as it was. */
async function assertFullDiskAt4(r: ChildRun, out: string, reported = out): Promise<void> {
  assert.equal(r.code, 1, r.out);
  assert.equal(r.error?.name, "CheckpointError", r.error?.stack);
  assert.match(r.error!.message, /No space left on device/);
  assert.ok(r.error!.message.includes(`${reported}/checkpoint-4: the checkpoint could not be written`));
  assert.ok(
    r.error!.message.includes(`the last good checkpoint is ${reported}/checkpoint-2`),
    r.error!.message,
  );
  assert.match(r.error!.message, /The disk is full: free some space/);
  assert.deepEqual(await entries(out), ["checkpoint-2", "metrics.jsonl"], "no temporary folder is left");
  await assertIntact(`${out}/checkpoint-2`, 2);
}

/** Whether this process may mount a tmpfs on `dir` in a user and mount namespace of its own (`unshare -rm`). */
async function canMountTmpfs(dir: string): Promise<boolean> {
  try {
    const r = await new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", `mount -t tmpfs -o size=64k tmpfs "${dir}"`],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success;
  } catch {
    return false;
  }
}

Deno.test(
  "a full disk during a save: a clear CheckpointError, and the previous checkpoint intact",
  gpuTest,
  async () => {
    await baseline();
    // room for one checkpoint and a half: the save at step 4 runs out of space
    const room = Math.ceil(1.5 * (await pagedSize(`${root}/full/checkpoint-2`)));
    // an injected ENOSPC (Deno's error for a full disk) once the bytes written pass the room
    const injected = `${root}/disk-injected`;
    // a real full disk: a tmpfs of that size, mounted in a namespace of the child's own (what it held is copied
    // out before the namespace ends), where this process may mount one
    const mnt = `${root}/tmpfs`;
    const copy = `${root}/disk-tmpfs`;
    await Deno.mkdir(mnt);
    await Deno.mkdir(copy);
    const tmpfs = async () => {
      const script = `mount -t tmpfs -o size=${room} tmpfs "$1" || exit 99; "$2" run -A "$3" "$4"; ` +
        `code=$?; cp -a "$1/out/." "$5/"; exit $code`;
      const args = [script, "sh", mnt, Deno.execPath(), CHILD, JSON.stringify(spec(`${mnt}/out`)), copy];
      const r = await new Deno.Command("unshare", { args: ["-rm", "sh", "-c", ...args], env: ENV }).output();
      return parse(r.code, decoder.decode(r.stdout) + decoder.decode(r.stderr));
    };
    const mountable = await canMountTmpfs(mnt);
    const [injectedRun, tmpfsRun] = await Promise.all([
      child(spec(injected, { diskBytes: room })),
      mountable ? tmpfs() : null,
    ]);
    await assertFullDiskAt4(injectedRun, injected);
    if (tmpfsRun) await assertFullDiskAt4(tmpfsRun, copy, `${mnt}/out`);
    else {console.log(
        "(no tmpfs: this process may not mount one in a namespace of its own; ENOSPC was injected)",
      );}
  },
);

Deno.test(
  "a dataset row that fails late in the file: the error names the file and the line, before any step",
  gpuTest,
  async () => {
    await setup();
    // a model folder whose chat template raises for a role it does not know, as real templates do
    const t = charTokenizerFiles();
    const template = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] + '?' }}" +
      "{% elif m['role'] == 'assistant' %}{{ '=' + m['content'] }}" +
      "{% else %}{{ raise_exception('unknown role ' + m['role']) }}{% endif %}{% endfor %}";
    const tokenizer = new Tokenizer(t.files.tokenizer, { ...t.files.config, chat_template: template });
    const model = await initModel(TINY_LLAMA, { seed: 1 });
    await saveModel(model, `${root}/model`, { tokenizer });
    model.dispose();
    const rows = containsATask(40, 5);
    // line 38 of 40: a conversation with a role the template rejects; a line cut short
    const conv = rows.map((r, i) => ({
      prompt: [{ role: i === 37 ? "tool" : "user", content: r.prompt.slice(0, -1) }],
      chosen: [{ role: "assistant", content: r.chosen }],
      rejected: [{ role: "assistant", content: r.rejected }],
    }));
    await Deno.writeTextFile(`${root}/conv.jsonl`, conv.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const lines = rows.map((r) => JSON.stringify(r));
    lines[37] = lines[37].slice(0, -5);
    await Deno.writeTextFile(`${root}/cut.jsonl`, lines.join("\n") + "\n");
    const train = async (data: string, out: string, ...flags: string[]) => {
      const args = [
        "run",
        "-A",
        MAIN,
        "train",
        "--model_name_or_path",
        `${root}/model`,
        "--dataset_name",
        data,
      ];
      args.push("--output_dir", out, "--max_length", "32", "--max_prompt_length", "16", "--max_steps", "4");
      args.push("--save_steps", "1", "--disable_tqdm", "true", ...flags);
      const r = await new Deno.Command(Deno.execPath(), { args, env: ENV }).output();
      return { code: r.code, err: decoder.decode(r.stderr) };
    };
    const runs = await Promise.all([
      train(`${root}/conv.jsonl`, `${root}/out-conv`),
      train(`${root}/conv.jsonl`, `${root}/out-conv2`, "--dataset_num_proc", "2"),
      train(`${root}/cut.jsonl`, `${root}/out-cut`),
    ]);
    const expected = [
      new RegExp(
        `^webdpo train: ${root}/conv\\.jsonl line 38: .*the chat template raised: unknown role tool`,
      ),
      new RegExp(
        `^webdpo train: ${root}/conv\\.jsonl line 38: .*the chat template raised: unknown role tool`,
      ),
      new RegExp(`^webdpo train: ${root}/cut\\.jsonl line 38: not valid JSON`),
    ];
    for (const [i, r] of runs.entries()) {
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, expected[i]);
      assert.doesNotMatch(r.err, /internal error|^\s+at /m);
    }
    // every row is read and tokenized before the first step: nothing was trained or saved
    for (const out of ["out-conv", "out-conv2", "out-cut"]) {
      await assert.rejects(Deno.stat(`${root}/${out}`), Deno.errors.NotFound);
    }
  },
);

Deno.test(
  "the device lost mid-run or during a save: a DeviceLostError naming the last checkpoint, which resumes",
  gpuTest,
  async () => {
    await baseline();
    const mid = `${root}/lost-mid`;
    const saving = `${root}/lost-saving`;
    const [midRun, savingRun] = await Promise.all([
      child(spec(mid, { loseDeviceAfterStep: 3 })),
      child(spec(saving, { loseDeviceWriting: `/\\.checkpoint-4\\.tmp-\\w+/model\\.safetensors$` })),
    ]);
    for (const [r, out, step] of [[midRun, mid, 3], [savingRun, saving, 4]] as const) {
      assert.equal(r.code, 1, r.out);
      assert.equal(r.error?.name, "DeviceLostError", r.error?.stack);
      assert.match(
        r.error!.message,
        new RegExp(`^the WebGPU device was lost \\(destroyed.*\\) after step ${step}`),
      );
      assert.ok(
        r.error!.message.includes(`the last good checkpoint, ${out}/checkpoint-2 (--resume_from_checkpoint `),
        r.error!.message,
      );
      assert.deepEqual(await entries(out), ["checkpoint-2", "metrics.jsonl"], "no temporary folder is left");
      await assertIntact(`${out}/checkpoint-2`, 2);
    }
    // a new process resumes from the checkpoint the error named
    await assertSameAsBaseline(await child(spec(mid, { resume: `${mid}/checkpoint-2` })));
  },
);

Deno.test({
  name: "cleanup the temporary folder",
  fn: async () => {
    await Deno.remove(root, { recursive: true });
  },
});
