/** Every op (forward + backward), re-exported. */
export { reshape } from "./reshape.ts";
export { scale } from "./scale.ts";
