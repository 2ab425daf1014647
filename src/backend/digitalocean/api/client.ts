import { Internal } from "../../../errors.js";
import { DoApiError } from "./errors.js";
import { outcomeOfFailure, type ApiOutcome } from "./outcome.js";
import type { ApiRequest, ApiResponse, Transport } from "./transport.js";
import type { DoAccount, DoAction, DoDroplet, DoLinks, DoMeta, DoPage, DoSnapshot, DoVolume, NewDoVolume, PageRequest } from "./types.js";

export interface VolumeFilter extends PageRequest {
  readonly name?: string;
  readonly region?: string;
}

export interface TaggedResource {
  readonly resource_id: string;
  readonly resource_type: "volume" | "volume_snapshot" | "droplet";
}

/**
 * An id as one path segment. "." and ".." cannot be sent (URL parsing removes
 * them, even percent-encoded, and the request would reach another route), and
 * no DigitalOcean resource has such an id, nor an empty one: they are answered
 * as the API answers an unknown id, 404, without a request.
 */
function id(value: string | number): string {
  const text = String(value);
  if (text === "" || text === "." || text === "..") {
    throw new DoApiError(404, "not_found", "The resource you were accessing could not be found.", "(no request: not an id)");
  }
  return encodeURIComponent(text);
}

/**
 * Typed calls to the DigitalOcean API routes the driver uses. Errors are
 * DoApiError (a CSI status error carrying the HTTP status and the API's
 * message) or UNAVAILABLE once retries run out; see Transport. Listeners
 * learn what each request said about the API's own health (see ApiOutcome).
 */
export class DigitalOceanClient {
  readonly #listeners: ((outcome: ApiOutcome) => void)[] = [];

  constructor(readonly transport: Transport) {}

  /** Call `listener` with the outcome of every request from now on. */
  onOutcome(listener: (outcome: ApiOutcome) => void): void {
    this.#listeners.push(listener);
  }

  async listVolumes(filter: VolumeFilter, signal: AbortSignal): Promise<DoPage<DoVolume>> {
    const res = await this.#get("v2/volumes", "GET /v2/volumes", signal, {
      name: filter.name,
      region: filter.region,
      page: filter.page,
      per_page: filter.perPage,
    });
    return page<DoVolume>(res, "volumes");
  }

  async getVolume(volumeId: string, signal: AbortSignal): Promise<DoVolume> {
    return field<DoVolume>(await this.#get(`v2/volumes/${id(volumeId)}`, "GET /v2/volumes/{id}", signal), "volume");
  }

  async createVolume(spec: NewDoVolume, signal: AbortSignal): Promise<DoVolume> {
    const res = await this.#request({ method: "POST", path: "v2/volumes", route: "POST /v2/volumes", body: spec, signal });
    return field<DoVolume>(res.body, "volume");
  }

  async deleteVolume(volumeId: string, signal: AbortSignal): Promise<void> {
    await this.#request({ method: "DELETE", path: `v2/volumes/${id(volumeId)}`, route: "DELETE /v2/volumes/{id}", signal });
  }

  attachVolume(volumeId: string, dropletId: number, region: string, signal: AbortSignal): Promise<DoAction> {
    return this.#volumeAction(volumeId, { type: "attach", droplet_id: dropletId, region }, signal);
  }

  detachVolume(volumeId: string, dropletId: number, region: string, signal: AbortSignal): Promise<DoAction> {
    return this.#volumeAction(volumeId, { type: "detach", droplet_id: dropletId, region }, signal);
  }

  resizeVolume(volumeId: string, sizeGigabytes: number, region: string, signal: AbortSignal): Promise<DoAction> {
    return this.#volumeAction(volumeId, { type: "resize", size_gigabytes: sizeGigabytes, region }, signal);
  }

  async getVolumeAction(volumeId: string, actionId: number, signal: AbortSignal): Promise<DoAction> {
    const body = await this.#get(`v2/volumes/${id(volumeId)}/actions/${id(actionId)}`, "GET /v2/volumes/{id}/actions/{action_id}", signal);
    return field<DoAction>(body, "action");
  }

  async getAction(actionId: number, signal: AbortSignal): Promise<DoAction> {
    return field<DoAction>(await this.#get(`v2/actions/${id(actionId)}`, "GET /v2/actions/{id}", signal), "action");
  }

  async getDroplet(dropletId: number, signal: AbortSignal): Promise<DoDroplet> {
    return field<DoDroplet>(await this.#get(`v2/droplets/${id(dropletId)}`, "GET /v2/droplets/{id}", signal), "droplet");
  }

  async createVolumeSnapshot(volumeId: string, spec: { name: string; tags?: readonly string[] }, signal: AbortSignal): Promise<DoSnapshot> {
    const res = await this.#request({
      method: "POST",
      path: `v2/volumes/${id(volumeId)}/snapshots`,
      route: "POST /v2/volumes/{id}/snapshots",
      body: spec,
      signal,
    });
    return field<DoSnapshot>(res.body, "snapshot");
  }

  async listVolumeSnapshots(volumeId: string, request: PageRequest, signal: AbortSignal): Promise<DoPage<DoSnapshot>> {
    const body = await this.#get(`v2/volumes/${id(volumeId)}/snapshots`, "GET /v2/volumes/{id}/snapshots", signal, {
      page: request.page,
      per_page: request.perPage,
    });
    return page<DoSnapshot>(body, "snapshots");
  }

  async getSnapshot(snapshotId: string, signal: AbortSignal): Promise<DoSnapshot> {
    return field<DoSnapshot>(await this.#get(`v2/snapshots/${id(snapshotId)}`, "GET /v2/snapshots/{id}", signal), "snapshot");
  }

  /** Volume snapshots of the whole account (`resource_type=volume`). */
  async listVolumeSnapshotsOfAccount(request: PageRequest, signal: AbortSignal): Promise<DoPage<DoSnapshot>> {
    const body = await this.#get("v2/snapshots", "GET /v2/snapshots", signal, {
      resource_type: "volume",
      page: request.page,
      per_page: request.perPage,
    });
    return page<DoSnapshot>(body, "snapshots");
  }

  async deleteSnapshot(snapshotId: string, signal: AbortSignal): Promise<void> {
    await this.#request({ method: "DELETE", path: `v2/snapshots/${id(snapshotId)}`, route: "DELETE /v2/snapshots/{id}", signal });
  }

  async createTag(name: string, signal: AbortSignal): Promise<void> {
    await this.#request({ method: "POST", path: "v2/tags", route: "POST /v2/tags", body: { name }, signal });
  }

  async tagResources(tag: string, resources: readonly TaggedResource[], signal: AbortSignal): Promise<void> {
    await this.#request({
      method: "POST",
      path: `v2/tags/${id(tag)}/resources`,
      route: "POST /v2/tags/{tag}/resources",
      body: { resources },
      signal,
    });
  }

  async untagResources(tag: string, resources: readonly TaggedResource[], signal: AbortSignal): Promise<void> {
    await this.#request({
      method: "DELETE",
      path: `v2/tags/${id(tag)}/resources`,
      route: "DELETE /v2/tags/{tag}/resources",
      body: { resources },
      signal,
    });
  }

  async getAccount(signal: AbortSignal): Promise<DoAccount> {
    return field<DoAccount>(await this.#get("v2/account", "GET /v2/account", signal), "account");
  }

  async #volumeAction(volumeId: string, body: Record<string, unknown>, signal: AbortSignal): Promise<DoAction> {
    const res = await this.#request({
      method: "POST",
      path: `v2/volumes/${id(volumeId)}/actions`,
      route: "POST /v2/volumes/{id}/actions",
      body,
      signal,
    });
    return field<DoAction>(res.body, "action");
  }

  async #request(req: ApiRequest): Promise<ApiResponse> {
    let res: ApiResponse;
    try {
      res = await this.transport.request(req);
    } catch (err) {
      const outcome = outcomeOfFailure(err);
      if (outcome !== undefined) this.#tell(outcome);
      throw err;
    }
    this.#tell({ ok: true });
    return res;
  }

  #tell(outcome: ApiOutcome): void {
    for (const listener of this.#listeners) listener(outcome);
  }

  async #get(path: string, route: string, signal: AbortSignal, query?: Record<string, string | number | undefined>): Promise<unknown> {
    return (await this.#request({ method: "GET", path, route, query, signal })).body;
  }
}

function field<T>(body: unknown, key: string): T {
  if (typeof body === "object" && body !== null && key in body) {
    const value = (body as Record<string, unknown>)[key];
    if (typeof value === "object" && value !== null) return value as T;
  }
  throw Internal("DigitalOcean API answer lacks the %s object", key);
}

function page<T>(body: unknown, key: string): DoPage<T> {
  if (typeof body !== "object" || body === null) throw Internal("DigitalOcean API answer is not an object");
  const record = body as { links?: DoLinks; meta?: DoMeta } & Record<string, unknown>;
  const items = record[key] ?? [];
  if (!Array.isArray(items)) throw Internal("DigitalOcean API answer's %s is not a list", key);
  return { items: items as T[], nextPage: nextPageOf(record.links), total: record.meta?.total };
}

/** The page number `links.pages.next` points at (the URL itself is not followed: its host is not ours to trust). */
export function nextPageOf(links: DoLinks | undefined): number | undefined {
  const next = links?.pages?.next;
  if (next === undefined || next === "") return undefined;
  try {
    const value = Number(new URL(next).searchParams.get("page"));
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
