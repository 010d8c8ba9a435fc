import assert from "node:assert/strict";
import { VERSION } from "../src/version.ts";

const decoder = new TextDecoder();
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const main = new URL("../src/cli/main.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", main, ...args] }).output();
  return { code: r.code, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

Deno.test("version constant matches deno.json", async () => {
  const cfg = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(cfg.version, VERSION);
});

Deno.test("webdpo --help and --version", async () => {
  const h = await cli("--help");
  assert.equal(h.code, 0);
  assert.match(h.out, /usage: webdpo <command>/);
  const v = await cli("--version");
  assert.equal(v.out.trim(), VERSION);
});

Deno.test("webdpo env names the adapter and its limits", async () => {
  const r = await cli("env");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^webdpo \d+\.\d+\.\d+/);
  assert.match(r.out, /adapter \S+/);
  assert.match(r.out, /limit maxStorageBufferBindingSize \d+/);
});

Deno.test("an unknown command exits 2 with the usage", async () => {
  const r = await cli("frobnicate");
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frobnicate"/);
});
