/** The error of an invalid DPO configuration (its own module, so the loss code can throw it without a cycle). */
import { WebDPOError } from "../gpu/errors.ts";

/** An invalid configuration: an unknown key, a value of the wrong type or range, or an invalid combination. */
export class ConfigError extends WebDPOError {}
