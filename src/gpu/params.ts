/**
 * Packs a dispatch's scalar parameters for the kernel's `var<uniform> p: Params` (binding 0). Fields are 4-byte
 * scalars written in call order, so the WGSL struct must declare them in the same order and types.
 *
 *   new Params().u32(M, N, K).f32(alpha)   ↔   struct Params { M: u32, N: u32, K: u32, alpha: f32 }
 */
export class Params {
  private buf = new ArrayBuffer(256);
  private view = new DataView(this.buf);
  private n = 0;

  private push(v: number, kind: "u32" | "i32" | "f32"): void {
    if (this.n >= 64) throw new Error("Params: at most 64 scalar fields");
    const o = this.n * 4;
    if (kind === "u32") {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new RangeError(`Params.u32: ${v} is not a u32`);
      }
      this.view.setUint32(o, v, true);
    } else if (kind === "i32") {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
        throw new RangeError(`Params.i32: ${v} is not an i32`);
      }
      this.view.setInt32(o, v, true);
    } else this.view.setFloat32(o, v, true);
    this.n++;
  }

  u32(...vs: number[]): this {
    for (const v of vs) this.push(v, "u32");
    return this;
  }
  i32(...vs: number[]): this {
    for (const v of vs) this.push(v, "i32");
    return this;
  }
  f32(...vs: number[]): this {
    for (const v of vs) this.push(v, "f32");
    return this;
  }

  /** Bytes written so far (a multiple of 4). */
  get byteLength(): number {
    return this.n * 4;
  }

  /** The packed bytes. */
  bytes(): Uint8Array {
    return new Uint8Array(this.buf, 0, Math.max(16, Math.ceil(this.n / 4) * 16));
  }
}
