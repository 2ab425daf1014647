import type { Logger } from "../../log/logger.js";
import type { StringMap } from "../backend.js";

/** Distinct key sets remembered as already warned about; the least recently seen is forgotten first. */
const REMEMBERED_SETS = 64;
/** Keys named in one message, and the longest part of a key or name quoted. */
const NAMED_KEYS = 8;
const QUOTED_CHARS = 64;

/** What the external-provisioner adds with --extra-create-metadata: where the parameters came from. */
const ORIGIN_KEYS = {
  pvc: "csi.storage.k8s.io/pvc/name",
  namespace: "csi.storage.k8s.io/pvc/namespace",
  pv: "csi.storage.k8s.io/pv/name",
} as const;

/**
 * Warns about StorageClass parameters the DigitalOcean backend ignores, once
 * per distinct set of ignored keys (the CSI request names no StorageClass, and
 * one class always sends the same set), so a class with an extra key logs one
 * line, not one per volume. The message reads as an event message; the log
 * line adds the PVC and PV that first showed the set, when the provisioner
 * passes them. Memory is bounded: a set forgotten is warned about again.
 */
export class IgnoredParameterWarnings {
  readonly #log: Logger;
  readonly #seen = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Warn about `ignored` (keys of `parameters`, sorted) unless this set was warned about recently. */
  note(ignored: readonly string[], parameters: StringMap): void {
    if (ignored.length === 0) return;
    const id = JSON.stringify(ignored);
    const known = this.#seen.delete(id);
    this.#seen.add(id);
    if (known) return;
    if (this.#seen.size > REMEMBERED_SETS) {
      const [oldest] = this.#seen;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
    const origin: Record<string, string> = {};
    for (const [field, key] of Object.entries(ORIGIN_KEYS)) {
      const value = parameters[key];
      if (value !== undefined) origin[field] = clip(value);
    }
    this.#log.warn({ ignoredParameters: ignored.slice(0, NAMED_KEYS).map(clip), ...origin }, ignoredParametersMessage(ignored));
  }
}

/** The event-style message for a set of ignored keys. */
export function ignoredParametersMessage(ignored: readonly string[]): string {
  const named = ignored
    .slice(0, NAMED_KEYS)
    .map((k) => JSON.stringify(clip(k)))
    .join(", ");
  const more = ignored.length > NAMED_KEYS ? ` and ${ignored.length - NAMED_KEYS} more` : "";
  const noun = ignored.length === 1 ? "parameter" : "parameters";
  return `StorageClass ${noun} ${named}${more} ${ignored.length === 1 ? "is" : "are"} not used by this driver and ${ignored.length === 1 ? "was" : "were"} ignored; volumes are provisioned without them`;
}

function clip(text: string): string {
  return text.length > QUOTED_CHARS ? `${text.slice(0, QUOTED_CHARS)}...` : text;
}
