/**
 * Fuzz targets (run in the sandbox worker) for safetensors files: the header and every loadable tensor of
 * `model.safetensors`, and the shard index `model.safetensors.index.json`. A result that breaks an invariant of
 * the reader (a tensor outside the file, data not matching its shape, overlapping tensors) throws a plain Error.
 */
import {
  openSafetensors,
  readSafetensorsHeader,
  readShardIndex,
  readTensor,
} from "../../src/models/safetensors.ts";

const LOADABLE = ["F32", "F16", "BF16"];

function invalid(why: string): never {
  throw new Error(`invalid result: ${why}`);
}

/** Reads the header of `dir/model.safetensors`, then each F32/F16/BF16 tensor. */
export async function safetensorsFile(dir: string): Promise<unknown> {
  const path = `${dir}/model.safetensors`;
  const size = (await Deno.stat(path)).size;
  const header = await readSafetensorsHeader(path);
  let end = 0;
  for (const e of header.tensors) {
    if (e.begin < end || e.end > size || e.begin > e.end) {
      invalid(`tensor "${e.name}" at [${e.begin}, ${e.end})`);
    }
    end = e.end;
  }
  const file = await openSafetensors(path);
  let values = 0;
  try {
    for (const e of header.tensors) {
      if (!LOADABLE.includes(e.dtype)) continue;
      const t = await readTensor(file, header, e);
      const n = e.shape.reduce((a, d) => a * d, 1);
      if (t.data.length !== n) {
        invalid(`tensor "${e.name}" has ${t.data.length} values for shape [${e.shape}]`);
      }
      values += n;
    }
  } finally {
    await file.close();
  }
  return { tensors: header.tensors.length, values };
}

/** Reads `dir/model.safetensors.index.json`. */
export async function shardIndex(dir: string): Promise<unknown> {
  const map = await readShardIndex(`${dir}/model.safetensors.index.json`);
  for (const [name, file] of map) {
    if (typeof file !== "string") {
      invalid(`tensor "${name}" maps to ${JSON.stringify(file)}, not a file name`);
    }
  }
  return { tensors: map.size };
}
