/** Layers. */
export { linear } from "./layers.ts";
export { Module } from "./module.ts";
