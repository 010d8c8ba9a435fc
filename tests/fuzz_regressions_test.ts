/**
 * The inputs the parser fuzzers (tests/fuzz_*_test.ts) found failing, minimized, as plain tests: each once ended
 * in an unhandled error, a hang or a wrong result, and must now end in a WebDPOError naming the file and place.
 */
import assert from "node:assert/strict";
import { readSafetensorsHeader, readShardIndex, SafetensorsError } from "../src/models/safetensors.ts";

const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** Writes `files` into a temporary folder, runs `fn` on it, removes it. */
async function inFolder<T>(files: Record<string, string | Uint8Array>, fn: (dir: string) => Promise<T>) {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-regression-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A safetensors file of `header` (JSON text) and `dataBytes` zero bytes. */
function safetensors(header: string, dataBytes = 0): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("regression: safetensors __metadata__ and dtype nested 100,000 deep (was a RangeError)", async () => {
  for (
    const header of [
      `{"__metadata__":${deepArray(100_000)}}`,
      `{"__metadata__":{"format":${deepArray(100_000)}}}`,
      `{"w":{"dtype":${deepArray(100_000)},"shape":[1],"data_offsets":[0,4]}}`,
    ]
  ) {
    await inFolder({ "model.safetensors": safetensors(header, 4) }, async (dir) => {
      await assert.rejects(
        readSafetensorsHeader(`${dir}/model.safetensors`),
        (e) =>
          e instanceof SafetensorsError &&
          /model\.safetensors: corrupt header: .*("__metadata__"|"w")/.test(e.message),
      );
    });
  }
});

Deno.test("regression: a safetensors dtype named like an Object.prototype member is an unknown dtype", async () => {
  const header = `{"w":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}`;
  await inFolder({ "model.safetensors": safetensors(header, 4) }, async (dir) => {
    await assert.rejects(
      readSafetensorsHeader(`${dir}/model.safetensors`),
      /tensor "w" has unknown dtype toString/,
    );
  });
});

Deno.test("regression: a shard index that is null, or maps a tensor to a non-file, is refused", async () => {
  for (
    const [index, message] of [
      ["null", /has no "weight_map" object/],
      [`{"weight_map":{"w":[]}}`, /weight_map\["w"\] is \[\], not the name of a file/],
      [`{"weight_map":{"w":"../other/model.safetensors"}}`, /weight_map\["w"\] is "\.\.\/other/],
    ] as const
  ) {
    await inFolder({ "model.safetensors.index.json": index }, async (dir) => {
      await assert.rejects(
        readShardIndex(`${dir}/model.safetensors.index.json`),
        (e) =>
          e instanceof SafetensorsError && /model\.safetensors\.index\.json: /.test(e.message) &&
          message.test(e.message),
      );
    });
  }
});
