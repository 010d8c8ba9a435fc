// transpose.wgsl — out[b, j, i] = x[b, i, j]: swaps the last two axes of [B, M, N] into a contiguous [B, N, M].
//
// Bindings: 0 uniform Params { M: u32, N: u32, tilesX: u32, tilesY: u32, tiles: u32 };
//           1 x: array<u32> (read), [B, M, N]; 2 out: array<u32> (read_write), [B, N, M].
// Layout:   row-major; batch b starts at b*M*N in both. Elements are moved as 32-bit words (f32 or i32 alike,
//           bit for bit).
// Tiling:   a 32×32 tile of x goes through shared memory (padded to 33 columns against bank conflicts), so both
//           the loads (along N) and the stores (along M) are contiguous across a warp's 32 invocations.
// Dispatch: workgroup (32, 8); each invocation moves 4 elements of one tile. tilesX = ceil(N/32),
//           tilesY = ceil(M/32), tiles = tilesX*tilesY*B workgroups laid out with grid1d(tiles, 1):
//           t = wid.x + wid.y * nwg.x; tile column tx = t % tilesX, tile row ty = (t / tilesX) % tilesY,
//           batch b = t / (tilesX*tilesY).

struct Params { M: u32, N: u32, tilesX: u32, tilesY: u32, tiles: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const TILE: u32 = 32u;
const PAD: u32 = 33u;

var<workgroup> tile: array<u32, 1056>; // 32 × 33

@compute @workgroup_size(32, 8)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= p.tiles) { return; }
  let tx = t % p.tilesX;
  let rest = t / p.tilesX;
  let ty = rest % p.tilesY;
  let b = rest / p.tilesY;
  let base = b * p.M * p.N;
  let col = tx * TILE + lid.x;
  for (var j = 0u; j < TILE; j += 8u) {
    let row = ty * TILE + lid.y + j;
    if (row < p.M && col < p.N) { tile[(lid.y + j) * PAD + lid.x] = x[base + row * p.N + col]; }
  }
  workgroupBarrier();
  let orow_i = ty * TILE + lid.x; // index along M (the output's columns)
  for (var j = 0u; j < TILE; j += 8u) {
    let ocol_j = tx * TILE + lid.y + j; // index along N (the output's rows)
    if (ocol_j < p.N && orow_i < p.M) { out[base + ocol_j * p.M + orow_i] = tile[lid.x * PAD + lid.y + j]; }
  }
}
