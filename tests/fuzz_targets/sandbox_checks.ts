/** Fuzz targets that misbehave on purpose, for the sandbox's own tests (fuzz_sandbox_test.ts). */
import { WebDPOError } from "../../src/gpu/errors.ts";

/** Never returns (a synchronous loop). */
export function spin(): Promise<unknown> {
  for (;;) {
    // a parser stuck on a claimed count
  }
}

/** Allocates a gigabyte, as a parser trusting a claimed size would, then fails properly. */
export function allocate(): Promise<unknown> {
  const claimed = new Uint8Array(2 ** 30);
  throw new WebDPOError(`claimed.bin: a ${claimed.length}-byte buffer was allocated`);
}

/** Fails with a plain TypeError. */
export function untyped(): Promise<unknown> {
  return Promise.resolve(null).then((v) => (v as unknown as { x: number }).x);
}

/** Reads its file back. */
export async function echo(dir: string): Promise<unknown> {
  return await Deno.readTextFile(`${dir}/a/b.txt`);
}
