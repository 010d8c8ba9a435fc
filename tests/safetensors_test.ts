import assert from "node:assert/strict";
import {
  gpuValues,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  WRITE_CHUNK,
  writeSafetensors,
} from "../src/models/safetensors.ts";
import { tensor } from "../src/tensor/create.ts";
import { gpuTest, randomArray, setup } from "./util.ts";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "../src/models/dtype.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;

Deno.test("reads a transformers checkpoint: names, shapes, metadata", async () => {
  const h = await readSafetensorsHeader(`${FIX}hf-reference/llama/model.safetensors`);
  assert.equal(h.metadata.format, "pt");
  assert.equal(h.tensors.length, 21);
  assert.deepEqual(h.byName.get("model.layers.0.self_attn.k_proj.weight")!.shape, [32, 64]);
  const g = await readSafetensors(`${FIX}tiny-gpt2-transformers/model.safetensors`);
  assert.equal(g.size, 16);
  assert.deepEqual(g.get("wte.weight")!.shape, [21, 2]);
  assert.equal(g.get("wpe.weight")!.data.length, 2048);
});

Deno.test("BF16 weights convert exactly to the f32 values they round to", async () => {
  const f = await readSafetensors(`${FIX}hf-reference/llama/model.safetensors`);
  const b = await readSafetensors(`${FIX}hf-reference/llama_bf16/model.safetensors`);
  for (const [name, t] of f) {
    const r = b.get(name)!;
    assert.equal(r.dtype, "BF16");
    const expect = bf16ToF32(f32ToBf16(t.data));
    assert.deepEqual(r.data, expect, name);
  }
});

Deno.test("write then read is bit-exact, and reproduces a transformers file byte for byte", async () => {
  const src = `${FIX}hf-reference/llama/model.safetensors`;
  const tensors = await readSafetensors(src);
  const out = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await writeSafetensors(
      out,
      [...tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: t.data })),
    );
    const again = await readSafetensors(out);
    for (const [name, t] of tensors) assert.deepEqual(again.get(name)!.data, t.data, name);
    assert.deepEqual(await Deno.readFile(out), await Deno.readFile(src));
    // BF16 on request, streamed data functions
    await writeSafetensors(
      out,
      [...tensors.values()].map((t) => ({
        name: t.name,
        shape: t.shape,
        data: () => Promise.resolve(t.data),
      })),
      { dtype: "BF16" },
    );
    assert.deepEqual(
      await Deno.readFile(out),
      await Deno.readFile(`${FIX}hf-reference/llama_bf16/model.safetensors`),
    );
  } finally {
    await Deno.remove(out);
  }
});

Deno.test("a tensor read in parts is written in parts of at most WRITE_CHUNK values, byte for byte", async () => {
  const n = WRITE_CHUNK + 1000;
  const values = randomArray(n, 9);
  const reads: [number, number][] = [];
  const out = await Deno.makeTempFile({ suffix: ".safetensors" });
  const whole = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    const reader = {
      read: (start: number, count: number) => {
        reads.push([start, count]);
        return Promise.resolve(values.slice(start, start + count));
      },
    };
    await writeSafetensors(out, [
      { name: "w", shape: [n], data: reader },
      { name: "b", shape: [2], data: new Float32Array([1, 2]) },
    ]);
    assert.deepEqual(reads, [[0, WRITE_CHUNK], [WRITE_CHUNK, 1000]]);
    await writeSafetensors(whole, [
      { name: "w", shape: [n], data: values },
      { name: "b", shape: [2], data: new Float32Array([1, 2]) },
    ]);
    assert.deepEqual(await Deno.readFile(out), await Deno.readFile(whole));
    const bad = { read: (_s: number, c: number) => Promise.resolve(new Float32Array(c - 1)) };
    await assert.rejects(
      () => writeSafetensors(out, [{ name: "w", shape: [3], data: bad }]),
      /a read of 3 values gave 2/,
    );
  } finally {
    await Deno.remove(out);
    await Deno.remove(whole);
  }
});

Deno.test("gpuValues reads a GPU tensor's ranges; readRange checks its bounds", gpuTest, async () => {
  await setup();
  const v = randomArray(1001, 3);
  const t = tensor(v);
  assert.deepEqual(await gpuValues(t).read(0, 1001), v);
  assert.deepEqual(await gpuValues(t).read(997, 4), v.slice(997));
  assert.deepEqual(await t.readRange(5, 0), new Float32Array(0));
  await assert.rejects(() => t.readRange(998, 4), /outside a tensor of 1001 elements/);
  t.dispose();
});

Deno.test("F16 conversion covers normals, subnormals, zero, infinities and NaN", () => {
  const bits = new Uint16Array([
    0x3c00,
    0xc000,
    0x0001,
    0x0000,
    0x8000,
    0x7c00,
    0xfc00,
    0x7e00,
    0x7bff,
    0x3555,
  ]);
  const v = f16ToF32(bits);
  assert.equal(v[0], 1);
  assert.equal(v[1], -2);
  assert.equal(v[2], 2 ** -24);
  assert.equal(v[3], 0);
  assert.ok(Object.is(v[4], -0));
  assert.equal(v[5], Infinity);
  assert.equal(v[6], -Infinity);
  assert.ok(Number.isNaN(v[7]));
  assert.equal(v[8], 65504);
  assert.ok(Math.abs(v[9] - 1 / 3) < 1e-3);
});

async function withFile(bytes: Uint8Array, fn: (path: string) => Promise<void>): Promise<void> {
  const p = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    await Deno.writeFile(p, bytes);
    await fn(p);
  } finally {
    await Deno.remove(p);
  }
}

function fileWith(header: string, dataBytes: number, declaredLen?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLen ?? h.length), true);
  out.set(h, 8);
  return out;
}

Deno.test("malformed files give errors naming the file and the problem", async () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(3), /truncated.*8-byte/],
    [fileWith("{}", 0, 1e9), /header length .* exceeds/],
    [fileWith("{}", 0, 5000), /truncated: header length/],
    [fileWith("{not json", 0), /not valid JSON/],
    [fileWith("[1,2]", 0), /not an object/],
    [fileWith('{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}', 4), /unknown dtype/],
    [fileWith('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', 4), /needs 8/],
    [fileWith('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 4), /truncated: tensor "a"/],
    [
      fileWith(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        8,
      ),
      /overlap/,
    ],
    [fileWith('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4), /invalid shape/],
  ];
  for (const [bytes, re] of cases) {
    await withFile(bytes, async (p) => {
      await assert.rejects(() => readSafetensorsHeader(p), (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, String(e));
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(p), e.message);
        return true;
      });
    });
  }
  await assert.rejects(() => readSafetensorsHeader("/nonexistent/model.safetensors"), /cannot open/);
});

Deno.test("unsupported dtypes are named when a tensor is read", async () => {
  await withFile(fileWith('{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', 8), async (p) => {
    await assert.rejects(() => readSafetensors(p), /dtype I64; webdpo loads F32, F16 and BF16/);
  });
});
