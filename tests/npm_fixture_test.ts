import assert from "node:assert/strict";
import { npmPackageFiles, untar } from "./npm_fixture.ts";

/** A ustar archive holding `files` (names up to 100 bytes), as tar writes it. */
function tar(files: Record<string, string>): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const [name, text] of Object.entries(files)) {
    const data = enc.encode(text);
    const h = new Uint8Array(512);
    h.set(enc.encode(name), 0);
    h.set(enc.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
    h[156] = "0".charCodeAt(0);
    h.set(enc.encode("ustar\0"), 257);
    blocks.push(h, new Uint8Array(Math.ceil(data.length / 512) * 512));
    blocks[blocks.length - 1].set(data);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let o = 0;
  for (const b of blocks) out.set(b, (o += b.length) - b.length);
  return out;
}

Deno.test("untar reads the regular files of a ustar archive", () => {
  const big = "x".repeat(1300);
  const files = untar(tar({ "package/a.json": '{"a":1}', "package/dir/big.txt": big, "package/empty": "" }));
  assert.deepEqual([...files.keys()], ["package/a.json", "package/dir/big.txt", "package/empty"]);
  assert.equal(new TextDecoder().decode(files.get("package/a.json")), '{"a":1}');
  assert.equal(new TextDecoder().decode(files.get("package/dir/big.txt")), big);
  assert.equal(files.get("package/empty")!.length, 0);
});

Deno.test("npm fixtures: downloaded, verified against the integrity, cached", async () => {
  const cache = await Deno.makeTempDir({ prefix: "webdpo-fixtures-" });
  Deno.env.set("WEBDPO_FIXTURE_CACHE", cache);
  try {
    const pkg = {
      name: "is-fullwidth-code-point",
      version: "3.0.0",
      integrity:
        "sha512-zymm5+u+sCsSWyD9qNaejV3DFvhCKclKdizYaJUuHA83RLjb7nSuGnddCHGv0hk+KY7BMAlsWeK4Ueg6EV6XQg==",
    };
    await assert.rejects(
      () => npmPackageFiles({ ...pkg, integrity: "sha512-AAAA" }, ["package.json"]),
      /integrity sha512-zymm5.*expected sha512-AAAA/,
    );
    const [json] = await npmPackageFiles(pkg, ["package.json"]);
    assert.equal(JSON.parse(json).version, "3.0.0");
    // the second call reads the cache: it works even with a wrong integrity, which is never checked again
    const [again] = await npmPackageFiles({ ...pkg, integrity: "sha512-AAAA" }, ["package.json"]);
    assert.equal(again, json);
    await assert.rejects(() => npmPackageFiles(pkg, ["no/such/file"]), /has no no\/such\/file/);
  } finally {
    Deno.env.delete("WEBDPO_FIXTURE_CACHE");
    await Deno.remove(cache, { recursive: true });
  }
});
