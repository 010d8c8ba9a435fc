/**
 * matmul: both kernels (register-tiled and shared-memory) against the float64 reference on shapes that are not
 * multiples of any tile (16×128 register blocks, 64×64 shared blocks, vec4 rows), in every transposition,
 * batched and with a shared 2-D b; accumulate mode; gradients by finite differences and against the reference
 * backward; the splitting of batches over binding limits and of grids over workgroup limits; errors.
 *
 * Tolerance (forward and reference-backward checks): |gpu − ref| ≤ 1e-5·√K·max|a|·max|b| elementwise, K the
 * length of the dot products (for gradients, the length of the sums that form them). A single wrong term of
 * size |a|·|b| exceeds it by a factor 1e5/√K.
 */
import assert from "node:assert/strict";
import { GpuLimitError } from "../src/gpu/errors.ts";
import { gpu, setCpuKernels } from "../src/gpu/device.ts";
import {
  defaultMatmulVariant,
  matmul,
  matmulDispatches,
  matmulInto,
  type MatmulVariant,
  matmulVariant,
  setGemvMaxRows,
  setMatmulLimits,
  setMatmulVariant,
  subgroupMatmulSupported,
} from "../src/autograd/ops/matmul.ts";
import { scope } from "../src/autograd/scope.ts";
import { emptyCache } from "../src/gpu/queue.ts";
import {
  setTextureOperandCap,
  setTextureOperands,
  textureCopies,
  textureOperands,
} from "../src/autograd/ops/texture_operands.ts";
import { tensor, zeros } from "../src/tensor/create.ts";
import {
  matmulBackwardRef,
  type MatmulCase,
  matmulRef,
  matmulTolerance,
  maxAbs,
} from "./reference/matmul.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

// "tiled" is a GPU kernel no adapter picks by default yet (unmeasured on a GPU): forced here on lavapipe.
// "subgroup" runs where the device has subgroups of ≥ 8 lanes (lavapipe); elsewhere its tests check the error.
const VARIANTS: MatmulVariant[] = ["register", "subgroup", "shared", "tiled"];
const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
const name = (ta: boolean, tb: boolean) => `${ta ? "Aᵀ" : "A"}·${tb ? "Bᵀ" : "B"}`;

/** Storage shapes of a case's operands and output. */
function shapes(c: MatmulCase, batchDims = c.batch > 1 ? [c.batch] : []) {
  const a = [...batchDims, ...(c.transA ? [c.K, c.M] : [c.M, c.K])];
  const b = [...(c.sharedB ? [] : batchDims), ...(c.transB ? [c.N, c.K] : [c.K, c.N])];
  return { a, b, y: [...batchDims, c.M, c.N] };
}

function data(c: MatmulCase, seed: number) {
  const a = randomArray(c.batch * c.M * c.K, seed, -1, 1);
  const b = randomArray((c.sharedB ? 1 : c.batch) * c.K * c.N, seed + 1, -2, 2);
  return { a, b };
}

async function checkForward(
  c: MatmulCase,
  seed: number,
  what: string,
  batchDims?: number[],
  tolScale = 1,
): Promise<void> {
  const { a, b } = data(c, seed);
  const s = shapes(c, batchDims);
  const got = await scope(async () => {
    const y = matmul(tensor(a, s.a), tensor(b, s.b), { transA: c.transA, transB: c.transB });
    assert.deepEqual(y.shape, s.y, `${what}: output shape`);
    return await y.toArray();
  });
  // f32 sums of a few hundred thousand terms (the long-K test) round by a few times the usual tolerance
  const tol = tolScale * matmulTolerance(c.K, maxAbs(a), maxAbs(b));
  assertClose(got, matmulRef(a, b, c), { atol: tol, rtol: 0 }, what);
}

/**
 * Runs `fn` with variant `v` forced. On a device that cannot run the subgroup kernel, "subgroup" instead checks
 * that a matmul refuses with the error that names the missing feature, and skips `fn`.
 */
async function withVariant(v: MatmulVariant, fn: () => Promise<unknown> | unknown): Promise<void> {
  setMatmulVariant(v);
  try {
    if (v === "subgroup" && !subgroupMatmulSupported(gpu().info)) {
      assert.throws(
        () => scope(() => matmul(zeros([2, 3]), zeros([3, 2]))),
        (e: unknown) => e instanceof GpuLimitError && /needs the device feature "subgroups"/.test(e.message),
      );
      return;
    }
    await fn();
  } finally {
    setMatmulVariant("auto");
  }
}

// [M, K, N]
// (K covers every residue mod 4: the register kernel's vec4 rows and padding)
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [129, 65, 33],
  [1, 300, 2],
  [2, 1, 300],
  [5, 7, 3],
  [67, 66, 129],
  [36, 44, 20],
];

for (const v of VARIANTS) {
  Deno.test(`matmul forward (${v}): 2-D awkward shapes, every transposition`, gpuTest, async () => {
    await setup();
    await withVariant(v, async () => {
      let seed = 1;
      for (const [M, K, N] of SHAPES) {
        for (const [transA, transB] of TRANS) {
          const c = { batch: 1, M, N, K, transA, transB };
          await checkForward(c, seed++, `${v} ${name(transA, transB)} M=${M} K=${K} N=${N}`);
        }
      }
    });
  });

  Deno.test(`matmul forward (${v}): batched and shared-weight operands`, gpuTest, async () => {
    await setup();
    await withVariant(v, async () => {
      let seed = 100;
      for (const [transA, transB] of TRANS) {
        const t = name(transA, transB);
        // [3,17,9]·[3,9,13]
        await checkForward({ batch: 3, M: 17, K: 9, N: 13, transA, transB }, seed++, `${v} ${t} batched`);
        // [2,5,11]·[11,7], b shared by the batch
        await checkForward(
          { batch: 2, M: 5, K: 11, N: 7, transA, transB, sharedB: true },
          seed++,
          `${v} ${t} shared b`,
        );
        // two batch dims, [2,3,6,4]·[2,3,4,5]
        await checkForward({ batch: 6, M: 6, K: 4, N: 5, transA, transB }, seed++, `${v} ${t} 2 batch dims`, [
          2,
          3,
        ]);
        await checkForward(
          { batch: 6, M: 33, K: 8, N: 130, transA, transB, sharedB: true },
          seed++,
          `${v} ${t} 2 batch dims, shared b`,
          [3, 2],
        );
      }
    });
  });

  Deno.test(
    `matmulInto (${v}): overwrite ignores old contents, accumulate adds alpha·AB`,
    gpuTest,
    async () => {
      await setup();
      await withVariant(v, async () => {
        // N = 6: the register kernel's edge stores only; N = 37: two whole 16-column blocks and an edge
        for (const [[transA, transB], N] of TRANS.flatMap((t) => [[t, 6], [t, 37]] as const)) {
          const c: MatmulCase = { batch: 2, M: 19, K: 10, N, transA, transB };
          const { a, b } = data(c, 7);
          const s = shapes(c);
          const ref = matmulRef(a, b, c);
          const tol = matmulTolerance(c.K, maxAbs(a), maxAbs(b));
          const c0 = randomArray(ref.length, 9, -3, 3);
          const [over, acc] = await scope(async () => {
            const at = tensor(a, s.a);
            const bt = tensor(b, s.b);
            const o1 = tensor(new Float32Array(ref.length).fill(NaN), s.y);
            matmulInto(o1, at, bt, { transA, transB, alpha: -2 });
            const o2 = tensor(c0, s.y);
            matmulInto(o2, at, bt, { transA, transB, accumulate: true, alpha: 0.5 });
            matmulInto(o2, at, bt, { transA, transB, accumulate: true }); // twice: c0 + 1.5·AB
            return [await o1.toArray(), await o2.toArray()];
          });
          const t = name(transA, transB);
          assertClose(over, ref.map((x) => -2 * x), { atol: 2 * tol, rtol: 0 }, `${v} ${t} overwrite`);
          assertClose(
            acc,
            ref.map((x, i) => c0[i] + 1.5 * x),
            { atol: 2 * tol, rtol: 1e-6 },
            `${v} ${t} accumulate`,
          );
        }
      });
    },
  );

  Deno.test(`matmul backward (${v}): finite differences, every transposition`, gpuTest, async () => {
    await setup();
    await withVariant(v, async () => {
      let seed = 300;
      for (const [transA, transB] of TRANS) {
        for (
          const c of [
            { batch: 1, M: 3, K: 5, N: 4, transA, transB },
            { batch: 2, M: 3, K: 2, N: 5, transA, transB },
            { batch: 3, M: 2, K: 3, N: 4, transA, transB, sharedB: true },
          ]
        ) {
          const { a, b } = data(c, seed++);
          const s = shapes(c);
          // f32 forward passes: step 1e-2, tolerance 2e-2 relative + 1e-3 absolute on each directional derivative
          await gradCheck(
            (x, y) => matmul(x, y, { transA, transB }),
            [{ data: a, shape: s.a }, { data: b, shape: s.b }],
            { eps: 1e-2, rtol: 2e-2, atol: 1e-3 },
          );
        }
      }
    });
  });

  Deno.test(`matmul backward (${v}): against the reference backward on awkward shapes`, gpuTest, async () => {
    await setup();
    await withVariant(v, async () => {
      let seed = 500;
      for (const [transA, transB] of TRANS) {
        for (
          const c of [
            { batch: 1, M: 129, K: 33, N: 65, transA, transB },
            { batch: 3, M: 17, K: 9, N: 13, transA, transB },
            { batch: 4, M: 5, K: 11, N: 7, transA, transB, sharedB: true },
          ] as MatmulCase[]
        ) {
          const { a, b } = data(c, seed++);
          const s = shapes(c);
          const dy = randomArray(c.batch * c.M * c.N, seed++, -1, 1);
          const [ga, gb] = await scope(async () => {
            const at = tensor(a, s.a, { requiresGrad: true });
            const bt = tensor(b, s.b, { requiresGrad: true });
            matmul(at, bt, { transA, transB }).backward(tensor(dy, s.y));
            return [await at.grad!.toArray(), await bt.grad!.toArray()];
          });
          const ref = matmulBackwardRef(a, b, dy, c);
          const what = `${v} ${name(transA, transB)} batch ${c.batch}${c.sharedB ? " shared" : ""}`;
          // dA sums over N terms, dB over M (times the batch when b is shared)
          const tolA = matmulTolerance(c.N, 1, maxAbs(b));
          const tolB = matmulTolerance(c.M * (c.sharedB ? c.batch : 1), 1, maxAbs(a));
          assertClose(ga, ref.da, { atol: tolA, rtol: 0 }, `${what} dA`);
          assertClose(gb, ref.db, { atol: tolB, rtol: 0 }, `${what} dB`);
        }
      }
    });
  });

  Deno.test(
    `matmul (${v}): batches split over binding limits, grids over workgroup limits`,
    gpuTest,
    async () => {
      await setup();
      await withVariant(v, async () => {
        try {
          // 4 KiB bindings: [7,33,20]·[7,20,9] (2.6 KiB per matrix of a) needs one dispatch per batch, at offsets
          // that are not multiples of the 256-byte binding alignment
          setMatmulLimits({ maxBindingBytes: 4096 });
          let seed = 700;
          for (const [transA, transB] of TRANS) {
            await checkForward({ batch: 7, M: 33, K: 20, N: 9, transA, transB }, seed++, `${v} split batch`);
            await checkForward(
              { batch: 5, M: 9, K: 13, N: 6, transA, transB, sharedB: true },
              seed++,
              `${v} split`,
            );
          }
          // a single A or C matrix above the limit (4800 and 4320 bytes here): computed in bands of rows, each
          // batch on its own, at unaligned offsets
          for (const transB of [false, true]) {
            await checkForward(
              { batch: 1, M: 40, K: 30, N: 5, transA: false, transB },
              seed++,
              `${v} row bands`,
            );
            await checkForward(
              { batch: 3, M: 27, K: 7, N: 40, transA: false, transB },
              seed++,
              `${v} row bands`,
            );
            await checkForward(
              { batch: 2, M: 45, K: 24, N: 3, transA: false, transB, sharedB: true },
              seed++,
              `${v} row bands`,
            );
          }
          // a transposed A (its rows are not contiguous) or a B above the limit: a clear error naming its shape
          const bigAt = () => matmul(zeros([30, 40]), zeros([30, 5]), { transA: true });
          assert.throws(bigAt, (e: unknown) => e instanceof GpuLimitError && /\[30,40\]/.test(e.message));
          const bigB = () => matmul(zeros([5, 40]), zeros([40, 30]));
          assert.throws(bigB, (e: unknown) => e instanceof GpuLimitError && /\[40,30\]/.test(e.message));
          // 2 workgroups per dimension: batch, rows and columns all split into several dispatches
          setMatmulLimits({ maxWorkgroups: 2 });
          for (const [transA, transB] of TRANS) {
            await checkForward({ batch: 5, M: 150, K: 7, N: 300, transA, transB }, seed++, `${v} split grid`);
          }
        } finally {
          setMatmulLimits(null);
        }
      });
    },
  );
}

Deno.test(
  "matmul row kernel (few rows × Bᵀ, CPU adapters): awkward shapes, batched, shared b, accumulate",
  gpuTest,
  async () => {
    await setup();
    await withVariant("register", async () => {
      // K covers every residue mod 8 (two vec4s per loop step) and N every residue mod 4 and 256 (columns
      // per invocation and per workgroup)
      let seed = 500;
      for (const M of [1, 2, 3, 4]) {
        for (const [K, N] of [[1, 1], [3, 5], [8, 255], [9, 257], [13, 4], [300, 513], [577, 66]]) {
          const c = { batch: 1, M, N, K, transA: false, transB: true };
          await checkForward(c, seed++, `row kernel M=${M} K=${K} N=${N}`);
        }
      }
      await checkForward({ batch: 3, M: 2, K: 37, N: 300, transA: false, transB: true }, seed++, "batched");
      await checkForward(
        { batch: 6, M: 1, K: 19, N: 261, transA: false, transB: true, sharedB: true },
        seed++,
        "shared b",
        [3, 2],
      );
      // accumulate with alpha, into old contents
      const c: MatmulCase = { batch: 2, M: 3, K: 21, N: 70, transA: false, transB: true };
      const { a, b } = data(c, 11);
      const s = shapes(c);
      const ref = matmulRef(a, b, c);
      const c0 = randomArray(ref.length, 12, -3, 3);
      const got = await scope(async () => {
        const o = tensor(c0, s.y);
        matmulInto(o, tensor(a, s.a), tensor(b, s.b), { transB: true, accumulate: true, alpha: -0.5 });
        return await o.toArray();
      });
      const tol = matmulTolerance(c.K, maxAbs(a), maxAbs(b));
      assertClose(got, ref.map((x, i) => c0[i] - 0.5 * x), { atol: tol, rtol: 1e-6 }, "accumulate");
    });
  },
);

Deno.test("matmul: few rows × Bᵀ take the row kernel, more rows the register kernel", gpuTest, async () => {
  await setup();
  await withVariant("register", () => {
    const kernelsOf = (M: number) =>
      scope(() =>
        matmulDispatches(zeros([M, 52]), zeros([M, 40]), zeros([52, 40]), { transB: true })
          .map((d) => d.kernel.name).join(" ")
      );
    assert.equal(kernelsOf(4), "matmul_gemv.wgsl");
    assert.equal(kernelsOf(5), "matmul_register.wgsl");
    if (subgroupMatmulSupported(gpu().info)) {
      setMatmulVariant("subgroup");
      assert.equal(kernelsOf(4), "matmul_gemv.wgsl", "the subgroup variant keeps the row kernel");
      assert.equal(kernelsOf(5), "matmul_subgroup.wgsl");
      setMatmulVariant("register");
    }
    assert.equal(
      scope(() => matmulDispatches(zeros([2, 52]), zeros([2, 40]), zeros([40, 52])).map((d) => d.kernel.name))
        .join(),
      "matmul_register.wgsl",
      "B not transposed: the register kernel",
    );
    const prev = setGemvMaxRows(0);
    try {
      assert.equal(kernelsOf(1), "matmul_register.wgsl");
    } finally {
      setGemvMaxRows(prev);
    }
    return Promise.resolve();
  });
});

Deno.test(
  "matmul (tiled): blocks inside the edges (no bounds checks) beside edge blocks, K tails, batches, accumulate",
  gpuTest,
  async () => {
    await setup();
    await withVariant("tiled", async () => {
      let seed = 700;
      // 128×128 blocks: [256, 64, 256] is four inside blocks and whole steps of K; the others mix inside and
      // edge blocks with K tails of every residue mod 8 (and mod 4: padded operands)
      const shapes: [number, number, number][] = [[256, 64, 256], [300, 37, 260], [129, 130, 385], [
        260,
        8,
        140,
      ]];
      for (const [M, K, N] of shapes) {
        for (const [transA, transB] of TRANS) {
          const c = { batch: 1, M, N, K, transA, transB };
          await checkForward(c, seed++, `tiled ${name(transA, transB)} M=${M} K=${K} N=${N}`);
        }
      }
      for (const [transA, transB] of TRANS) {
        const t = name(transA, transB);
        await checkForward({ batch: 2, M: 130, K: 24, N: 256, transA, transB }, seed++, `tiled ${t} batched`);
        await checkForward(
          { batch: 3, M: 128, K: 20, N: 132, transA, transB, sharedB: true },
          seed++,
          `tiled ${t} shared b`,
        );
      }
      // out = 1 + 0.5·A·B over an inside block and edge blocks
      const c = { batch: 1, M: 200, N: 136, K: 52 };
      const { a, b } = data(c, seed++);
      const got = await scope(async () => {
        const out = tensor(new Float32Array(c.M * c.N).fill(1), [c.M, c.N]);
        matmulInto(out, tensor(a, [c.M, c.K]), tensor(b, [c.K, c.N]), { accumulate: true, alpha: 0.5 });
        return await out.toArray();
      });
      const want = matmulRef(a, b, c).map((y) => 1 + 0.5 * y);
      assertClose(
        got,
        want,
        { atol: matmulTolerance(c.K, maxAbs(a), maxAbs(b)), rtol: 0 },
        "tiled accumulate",
      );
    });
  },
);

Deno.test(
  "matmul (subgroup): the same bits as the register kernel (same sums in the same order), every transposition",
  gpuTest,
  async () => {
    await setup();
    if (!subgroupMatmulSupported(gpu().info)) {
      await withVariant("subgroup", () => {}); // checks the refusal
      return;
    }
    let seed = 900;
    // the real-scale products' K (576) on edge-heavy M and N, and a batch with a shared b
    for (const [batch, M, K, N, sharedB] of [[1, 70, 576, 200, false], [3, 33, 52, 65, true]] as const) {
      for (const [transA, transB] of TRANS) {
        const c: MatmulCase = { batch, M, N, K, transA, transB, sharedB };
        const { a, b } = data(c, seed++);
        const s = shapes(c);
        const run = async (v: MatmulVariant) => {
          setMatmulVariant(v);
          try {
            return await scope(() => matmul(tensor(a, s.a), tensor(b, s.b), { transA, transB }).toArray());
          } finally {
            setMatmulVariant("auto");
          }
        };
        const reg = await run("register");
        const sub = await run("subgroup");
        assert.deepEqual(sub, reg, `${name(transA, transB)} batch ${batch} M=${M} K=${K} N=${N}`);
      }
    }
  },
);

Deno.test(
  "matmul (subgroup): operands read from textures give the storage kernel's bits; ranges too large keep it",
  gpuTest,
  async () => {
    await setup();
    if (!subgroupMatmulSupported(gpu().info)) return; // the refusal is checked above
    let seed = 950;
    // edges, padded rows (K or N not a multiple of 4), a batch with a shared b, a batch past a binding's rows
    const cases: MatmulCase[] = [
      { batch: 1, M: 70, N: 200, K: 576 },
      { batch: 1, M: 33, N: 65, K: 50 },
      { batch: 3, M: 33, N: 65, K: 52, sharedB: true },
      { batch: 2, M: 40, N: 24, K: 36 },
    ];
    const run = async (c: MatmulCase, textures: boolean, accumulate: boolean) => {
      const { a, b } = data(c, seed);
      const s = shapes(c);
      setMatmulVariant("subgroup");
      setTextureOperands(textures);
      const copies = textureCopies();
      try {
        const got = await scope(async () => {
          const out = tensor(new Float32Array(s.y.reduce((x, y) => x * y, 1)).fill(0.25), s.y);
          matmulInto(out, tensor(a, s.a), tensor(b, s.b), {
            transA: c.transA,
            transB: c.transB,
            accumulate,
            alpha: accumulate ? -1.5 : 1,
          });
          return await out.toArray();
        });
        return { got, copied: textureCopies() - copies };
      } finally {
        setTextureOperands(null);
        setMatmulVariant("auto");
      }
    };
    for (const base of cases) {
      for (const [transA, transB] of TRANS) {
        const c = { ...base, transA, transB };
        const what = `${name(transA, transB)} batch ${c.batch} M=${c.M} K=${c.K} N=${c.N}`;
        for (const accumulate of [false, true]) {
          const plain = await run(c, false, accumulate);
          const tex = await run(c, true, accumulate);
          assert.equal(plain.copied, 0, what);
          assert.ok(tex.copied >= 2, `${what}: ${tex.copied} copies`);
          assert.deepEqual(tex.got, plain.got, `${what}${accumulate ? " accumulate" : ""}`);
        }
        seed++;
      }
    }
    // a texture of one row (64 KiB): a product whose B needs more keeps the storage kernel for it, and
    // the textures grow back for one that fits
    setTextureOperandCap(16 * 4096);
    try {
      const big = { batch: 1, M: 8, N: 64, K: 300, transB: true }; // B: 64·300 floats = 75 KiB
      const plain = await run(big, false, false);
      const tex = await run(big, true, false);
      assert.equal(tex.copied, 1, "A copied, B too large: the storage kernel");
      assert.deepEqual(tex.got, plain.got);
      setTextureOperandCap(null);
      const grown = await run(big, true, false);
      assert.equal(grown.copied, 2);
      assert.deepEqual(grown.got, plain.got);
      // emptyCache() lets the textures go; the next product makes them again
      emptyCache();
      const again = await run(big, true, false);
      assert.equal(again.copied, 2);
      assert.deepEqual(again.got, plain.got);
    } finally {
      setTextureOperandCap(null);
    }
  },
);

Deno.test("matmul: zero-size operands and K = 0", gpuTest, async () => {
  await setup();
  for (const v of VARIANTS) {
    await withVariant(v, async () => {
      assert.deepEqual(matmul(zeros([0, 4]), zeros([4, 3])).shape, [0, 3]);
      assert.deepEqual(matmul(zeros([2, 0, 4]), zeros([2, 4, 3])).shape, [2, 0, 3]);
      // K = 0: the empty sum is 0, even over an uninitialised output
      const y = matmul(zeros([3, 0]), zeros([0, 5]));
      assert.deepEqual(Array.from(await y.toArray()), new Array(15).fill(0));
      const acc = tensor(new Float32Array(15).fill(2), [3, 5]);
      matmulInto(acc, zeros([3, 0]), zeros([0, 5]), { accumulate: true });
      assert.deepEqual(Array.from(await acc.toArray()), new Array(15).fill(2));
    });
  }
});

Deno.test(
  "matmul: the default variant follows the adapter (and setCpuKernels); setMatmulVariant overrides it",
  gpuTest,
  async () => {
    await setup();
    assert.equal(
      defaultMatmulVariant({ adapterName: "llvmpipe (LLVM 15.0.6, 256 bits)", isFallbackAdapter: false }),
      "register",
    );
    assert.equal(
      defaultMatmulVariant({ adapterName: "SwiftShader Device (Subzero)", isFallbackAdapter: false }),
      "register",
    );
    assert.equal(
      defaultMatmulVariant({ adapterName: "some cpu adapter", isFallbackAdapter: true }),
      "register",
    );
    assert.equal(
      defaultMatmulVariant({ adapterName: "NVIDIA H100 80GB HBM3", isFallbackAdapter: false }),
      "shared",
    );
    // CPU adapters with subgroups of at least 8 lanes share A's loads across them
    const llvmpipe = { adapterName: "llvmpipe (LLVM 15.0.6, 256 bits)", isFallbackAdapter: true };
    assert.equal(
      defaultMatmulVariant({ ...llvmpipe, features: { subgroups: true }, subgroupMinSize: 8 }),
      "subgroup",
    );
    assert.equal(
      defaultMatmulVariant({ ...llvmpipe, features: { subgroups: true }, subgroupMinSize: 4 }),
      "register",
    );
    assert.equal(
      defaultMatmulVariant({ ...llvmpipe, features: { subgroups: false }, subgroupMinSize: 0 }),
      "register",
    );
    assert.equal(
      defaultMatmulVariant({
        adapterName: "NVIDIA H100 80GB HBM3",
        isFallbackAdapter: false,
        features: { subgroups: true },
        subgroupMinSize: 32,
      }),
      "shared",
    );
    setMatmulVariant("shared");
    assert.equal(matmulVariant(), "shared");
    setMatmulVariant("register");
    assert.equal(matmulVariant(), "register");
    setMatmulVariant("auto");
    // "auto" follows the CPU kernels' choice, which setCpuKernels forces like every kernel with two variants
    setCpuKernels(false);
    assert.equal(matmulVariant(), "shared");
    setCpuKernels(true);
    assert.equal(matmulVariant(), subgroupMatmulSupported(gpu().info) ? "subgroup" : "register");
    setCpuKernels(null);
    assert.equal(matmulVariant(), defaultMatmulVariant(gpu().info));
    assert.throws(
      () => setMatmulVariant("fast" as "auto"),
      /expected "register", "subgroup", "shared", "tiled" or "auto"/,
    );
    assert.throws(() => setMatmulLimits({ maxBindingBytes: 10 }), /maxBindingBytes/);
  },
);

Deno.test("matmul: shape errors say what was expected", gpuTest, async () => {
  await setup();
  assert.throws(
    () => matmul(zeros([2, 3]), zeros([4, 5])),
    /inner dimensions differ: op\(a\) is \[2, 3\] and op\(b\) is \[4, 5\]/,
  );
  assert.throws(() => matmul(zeros([2, 3]), zeros([3, 5]), { transB: true }), /op\(b\) is \[5, 3\]/);
  assert.throws(() => matmul(zeros([3]), zeros([3, 2])), /at least 2 dims/);
  assert.throws(() => matmul(zeros([2, 3, 4]), zeros([3, 4, 5])), /batch dims differ/);
  assert.throws(() => matmul(zeros([3, 4]), zeros([2, 4, 5])), /batch dims differ/);
  assert.throws(() => matmul(zeros([2, 3]), tensor([1, 2, 3], [3, 1], { dtype: "i32" })), /f32/);
  const a = zeros([2, 3]);
  const b = zeros([3, 4]);
  assert.throws(() => matmulInto(zeros([2, 5]), a, b), /expected \[2,4\]/);
  assert.throws(() => matmulInto(a, a, zeros([3, 3])), /share storage/);
  assert.throws(() => matmulInto(zeros([2, 4]), a, b, { alpha: NaN }), /alpha/);
});

Deno.test(
  "a model's logits larger than one storage binding come out whole (the LM head in bands of rows)",
  gpuTest,
  async () => {
    await setup();
    const { initModel } = await import("../src/models/init.ts");
    const model = await initModel({
      model_type: "llama",
      hidden_size: 32,
      intermediate_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 1,
      vocab_size: 300,
      max_position_embeddings: 64,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
    }, { seed: 4 });
    const ids = Array.from({ length: 40 }, (_, i) => (i * 37) % 300);
    try {
      const whole = await scope(() => model.forward([ids]).toArray());
      // 40 KiB bindings: every weight fits, the logits [40, 300] (48,000 bytes) do not
      setMatmulLimits({ maxBindingBytes: 40960 });
      const banded = await scope(() => model.forward([ids]).toArray());
      assert.equal(banded.length, 40 * 300);
      assertClose(banded, whole, { atol: 1e-5, rtol: 1e-5 }, "logits");
    } finally {
      setMatmulLimits(null);
      model.dispose();
    }
  },
);

Deno.test(
  "matmul: K past lavapipe's loop limit runs in windows of K, both kernels, every transposition, accumulating",
  gpuTest,
  async () => {
    await setup();
    // lavapipe stops an invocation after about 65 535 loop iterations in all; the register kernel takes K/4 steps
    // per invocation (measured wrong from K = 262 136), the shared one 18 per 16 of K (wrong from about 58 300).
    // On a CPU adapter both now run K in windows (K ≡ 3 mod 4: the padded vec4 rows of the register kernel too).
    const cases: [MatmulVariant, number, number, number][] = [
      ["register", 5, 262_147, 3],
      ["register", 2, 239_995, 3], // few rows × Bᵀ: the row kernel at its own budget (K/4 + 1 = 60,000 steps)
      ["register", 2, 240_003, 3], // one vec4 past it: the register kernel
      ["subgroup", 5, 262_147, 3],
      ["shared", 5, 60_001, 3],
      ["tiled", 5, 11_203, 3], // TILED_K_WINDOW = 5 568: three windows
    ];
    let seed = 300;
    for (const [v, M, K, N] of cases) {
      await withVariant(v, async () => {
        for (const [transA, transB] of TRANS) {
          if (M === 2 && !(transB && !transA)) continue;
          const c = { batch: 1, M, N, K, transA, transB };
          await checkForward(c, seed++, `${v} ${name(transA, transB)} K=${K}`, undefined, 4);
        }
        // out += 0.5·A·B over windows: the first window adds too
        const c = { batch: 1, M, N, K };
        const { a, b } = data(c, seed++);
        const got = await scope(async () => {
          const out = tensor(new Float32Array(M * N).fill(1), [M, N]);
          matmulInto(out, tensor(a, [M, K]), tensor(b, [K, N]), { accumulate: true, alpha: 0.5 });
          return await out.toArray();
        });
        const want = matmulRef(a, b, c).map((y) => 1 + 0.5 * y);
        const tol = 4 * matmulTolerance(K, maxAbs(a), maxAbs(b));
        assertClose(got, want, { atol: tol, rtol: 0 }, `${v} accumulate K=${K}`);
      });
    }
  },
);

Deno.test("textureOperands: storage operands become textures, lines kept, what it cannot rewrite refused", () => {
  const src = [
    "// enables: subgroups",
    "@group(0) @binding(1) var<storage, read> a: array<vec4f>; // A",
    "@group(0) @binding(2) var<storage, read> b: array<vec4f>;",
    "fn f(i: u32) -> vec4f { return a[i + 1u] + b[min(i, 3u)]; } // a[x] in a comment",
  ].join("\n");
  const out = textureOperands(src, ["a", "b"]);
  assert.equal(out.split("\n").length, 4);
  assert.match(out, /^\/\/ enables: subgroups$/m);
  assert.match(out, /@group\(0\) @binding\(1\) var a_tex: texture_2d<f32>; fn a_at\(i: u32\)/);
  assert.match(out, /return a_at\(i \+ 1u\) \+ b_at\(min\(i, 3u\)\);/);
  assert.doesNotMatch(out, /storage|\ba\[|\bb\[/);
  assert.throws(() => textureOperands(src, ["c"]), /no read-only vec4 storage binding named c/);
  assert.throws(() => textureOperands(src.replace("a[i + 1u]", "a[idx[i]]"), ["a"]), /holds brackets/);
});
