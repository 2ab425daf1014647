import type { Config } from "../../config.js";
import {
  AlreadyExists,
  Code,
  FailedPrecondition,
  Internal,
  InvalidArgument,
  NotFound,
  OutOfRange,
  ResourceExhausted,
  Unimplemented,
} from "../../errors.js";
import type { Logger } from "../../log/logger.js";
import type {
  ContentSource,
  ControllerBackend,
  ControllerFeatures,
  NewSnapshot,
  NewVolume,
  Page,
  PublishRequest,
  SizeRules,
  Snapshot,
  SnapshotFilter,
  StringMap,
  Topology,
  Volume,
} from "../backend.js";
import { DEFAULT_ACTION_POLLING, waitForAction, type ActionPolling, type ActionWatch } from "./action-waiter.js";
import { NO_METRICS, type DriverMetrics } from "../../util/metrics.js";
import { withProgress } from "../../util/progress.js";
import { DigitalOceanClient } from "./api/client.js";
import { ALREADY_ATTACHED, ATTACHMENT_NOT_FOUND, isApiStatus, isDoApiError } from "./api/errors.js";
import { jitter, sleep } from "./api/sleep.js";
import { Transport } from "./api/transport.js";
import type { DoAction, DoSnapshot, DoVolume } from "./api/types.js";
import { MAX_PER_PAGE } from "./api/types.js";
import { toSnapshot, toVolume } from "./convert.js";
import { ApiHealth } from "./health.js";
import { MetadataClient } from "./metadata.js";
import { CREATED_BY, doVolumeName, dropletIdOf, GIB, publishContextKey, volumeNameFrom } from "./names.js";
import { listRange } from "./paging.js";
import { IgnoredParameterWarnings } from "./ignored-parameters.js";
import { tagsParameter, validateDigitalOceanParameters } from "./parameters.js";

export interface DigitalOceanControllerOptions {
  readonly client: DigitalOceanClient;
  /** Region volumes are created in and listed from. */
  readonly region: string;
  readonly driverName: string;
  /** --do-tag: tag for volumes and snapshots; empty for none. */
  readonly tag: string;
  /** --default-volumes-page-size. */
  readonly defaultPageSize: number;
  readonly log: Logger;
  readonly polling?: ActionPolling;
  /** Action waits are measured here. */
  readonly metrics?: DriverMetrics;
}

/** Bound on the volume ids remembered (as carrying --do-tag, or with their content source). */
const TAGGED_MEMORY = 10_000;

/**
 * DigitalOcean Block Storage behind the backend-agnostic controller service:
 * volume id = DigitalOcean volume id, the CSI name as the volume name (see
 * doVolumeName), topology key `region`, publish_context
 * `<driver-name>/volume-name`. It spends as few API requests as it can: no
 * GET before attach or detach (their answers say what happened), the volume
 * name carried in volume_context, no poll when an action is already complete.
 */
export class DigitalOceanController implements ControllerBackend {
  readonly sizeRules: SizeRules = { minBytes: GIB, maxBytes: 16 * 1024 * GIB, defaultBytes: 16 * GIB, unitBytes: GIB };
  readonly features: ControllerFeatures = {
    cloneVolume: true,
    snapshots: true,
    expandVolume: true,
    getCapacity: false,
    publishReadonly: false,
    listPublishedNodes: true,
    volumeCondition: false,
    modifyVolume: true,
  };
  readonly health: ApiHealth;
  readonly #o: DigitalOceanControllerOptions;
  readonly #client: DigitalOceanClient;
  readonly #polling: ActionPolling;
  readonly #watch: ActionWatch;
  readonly #tagged = new Set<string>();
  /**
   * What volumes created by this process were made from. DigitalOcean does not
   * keep it, and a retried CreateVolume must report the content source again
   * (the external-provisioner deletes a volume whose source it does not see).
   */
  readonly #sources = new Map<string, ContentSource>();
  readonly #ignoredParameters: IgnoredParameterWarnings;

  constructor(options: DigitalOceanControllerOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#polling = options.polling ?? DEFAULT_ACTION_POLLING;
    this.#watch = { log: options.log, metrics: options.metrics };
    this.health = new ApiHealth(options.client, options.log);
    this.#ignoredParameters = new IgnoredParameterWarnings(options.log);
  }

  get region(): string {
    return this.#o.region;
  }

  validateParameters(parameters: StringMap, mutableParameters: StringMap): void {
    this.#ignoredParameters.note(validateDigitalOceanParameters(parameters, mutableParameters), parameters);
  }

  // ---------------------------------------------------------------- volumes

  async findVolumeByName(name: string, signal: AbortSignal): Promise<Volume | undefined> {
    const doName = doVolumeName(name);
    const page = await this.#client.listVolumes({ name: doName, region: this.region }, signal);
    const matches = page.items.filter((v) => v.name === doName && v.region.slug === this.region);
    if (matches.length > 1) {
      throw Internal("%d DigitalOcean volumes are named %s in %s; expected at most one", matches.length, doName, this.region);
    }
    const [found] = matches;
    return found === undefined ? undefined : toVolume(found, { name, source: this.#sources.get(found.id) });
  }

  async getVolume(volumeId: string, signal: AbortSignal): Promise<Volume | undefined> {
    const found = await this.#getDoVolume(volumeId, signal);
    return found === undefined ? undefined : toVolume(found);
  }

  async createVolume(spec: NewVolume, signal: AbortSignal): Promise<Volume> {
    this.#checkTopology(spec.requisite);
    const sizeGigabytes = Math.ceil(spec.sizeBytes / GIB);
    let snapshotId: string | undefined;
    let temporarySnapshot: string | undefined;
    // A snapshot source is not looked up first: the create's answer says what is wrong with it (the
    // controller service has already checked that it exists, is ready and fits).
    if (spec.source?.kind === "snapshot") {
      snapshotId = spec.source.id;
    } else if (spec.source?.kind === "volume") {
      temporarySnapshot = snapshotId = await this.#snapshotForClone(spec.name, spec.source.id, sizeGigabytes, signal);
    }

    const doName = doVolumeName(spec.name);
    // --do-tag and the mutable parameter `tags`; the API creates tags that do not exist yet.
    const tags = this.#tagsFor(tagsParameter(spec.mutableParameters) ?? []);
    let created: DoVolume;
    try {
      created = await this.#client.createVolume(
        {
          name: doName,
          region: this.region,
          size_gigabytes: sizeGigabytes,
          description: CREATED_BY,
          ...(snapshotId !== undefined ? { snapshot_id: snapshotId } : {}),
          ...(tags.length > 0 ? { tags } : {}),
        },
        signal,
      );
    } catch (err) {
      created = await this.#afterCreateFailure(err, spec, sizeGigabytes, signal);
    }
    if (this.#o.tag !== "") this.#rememberTagged(created.id);
    if (spec.source !== undefined) {
      if (this.#sources.size >= TAGGED_MEMORY) this.#sources.clear();
      this.#sources.set(created.id, spec.source);
    }
    if (temporarySnapshot !== undefined) await this.#deleteTemporarySnapshot(temporarySnapshot, signal);
    return toVolume(created, { name: spec.name, source: spec.source });
  }

  async deleteVolume(volumeId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.#client.deleteVolume(volumeId, signal);
    } catch (err) {
      if (isApiStatus(err, 404)) return;
      if (isApiStatus(err, 409)) {
        throw err.withCode(
          Code.FailedPrecondition,
          `volume ${volumeId} is attached to a droplet; it must be unpublished first (${err.apiMessage})`,
        );
      }
      throw err;
    }
  }

  async publishVolume(request: PublishRequest, signal: AbortSignal): Promise<StringMap> {
    const { volumeId, nodeId } = request;
    const dropletId = dropletIdOf(nodeId);
    if (dropletId === undefined) throw NotFound("node %s does not exist: DigitalOcean node ids are droplet ids", nodeId);
    let name = volumeNameFrom(this.#o.driverName, request.volumeContext);
    if (name === undefined) {
      // A volume this driver did not create (a static PV): its name comes from the API.
      const volume = await this.#getDoVolume(volumeId, signal);
      if (volume === undefined) throw NotFound("volume %s does not exist", volumeId);
      name = volume.name;
      if ((volume.tags ?? []).includes(this.#o.tag)) this.#rememberTagged(volumeId);
      const attachedTo = volume.droplet_ids ?? [];
      if (attachedTo.includes(dropletId)) {
        await this.#ensureTagged(volumeId, signal);
        return this.#publishContext(name);
      }
      if (attachedTo.length > 0) throw this.#attachedElsewhere(volumeId, attachedTo);
    }
    await this.#ensureTagged(volumeId, signal);

    let action: DoAction;
    try {
      action = await this.#client.attachVolume(volumeId, dropletId, this.region, signal);
    } catch (err) {
      if (isApiStatus(err, 404)) {
        const what = /droplet/i.test(err.apiMessage) ? `droplet ${dropletId}` : `volume ${volumeId}`;
        throw err.withCode(Code.NotFound, `${what} does not exist (${err.apiMessage})`);
      }
      if (isApiStatus(err, 422, ALREADY_ATTACHED)) {
        const volume = await this.#getDoVolume(volumeId, signal);
        if (volume === undefined) throw NotFound("volume %s does not exist", volumeId);
        const attachedTo = volume.droplet_ids ?? [];
        if (attachedTo.includes(dropletId)) return this.#publishContext(volume.name);
        if (attachedTo.length > 0) throw this.#attachedElsewhere(volumeId, attachedTo);
        throw err.withCode(Code.Aborted, `volume ${volumeId} is being attached or detached; retry (${err.apiMessage})`);
      }
      throw err;
    }
    await waitForAction(this.#client, volumeId, action, signal, this.#polling, this.#watch);
    return this.#publishContext(name);
  }

  async unpublishVolume(volumeId: string, nodeId: string, signal: AbortSignal): Promise<void> {
    let droplets: number[];
    if (nodeId === "") {
      const volume = await this.#getDoVolume(volumeId, signal);
      droplets = [...(volume?.droplet_ids ?? [])];
    } else {
      const dropletId = dropletIdOf(nodeId);
      if (dropletId === undefined) return; // not a droplet: the volume cannot be attached to it
      droplets = [dropletId];
    }
    for (const dropletId of droplets) {
      let action: DoAction;
      try {
        action = await this.#client.detachVolume(volumeId, dropletId, this.region, signal);
      } catch (err) {
        // No such volume, no such droplet, or not attached there: nothing to undo.
        if (isApiStatus(err, 404) || isApiStatus(err, 422, ATTACHMENT_NOT_FOUND)) continue;
        throw err;
      }
      await waitForAction(this.#client, volumeId, action, signal, this.#polling, this.#watch);
    }
  }

  async listVolumes(maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Volume>> {
    const page = await listRange(
      (request) => this.#client.listVolumes({ region: this.region, ...request }, signal),
      maxEntries,
      startingToken,
      this.#o.defaultPageSize,
    );
    return { items: page.items.map((v) => toVolume(v)), nextToken: page.nextToken };
  }

  async expandVolume(volumeId: string, sizeBytes: number, signal: AbortSignal): Promise<number> {
    const sizeGigabytes = Math.ceil(sizeBytes / GIB);
    let action: DoAction;
    try {
      action = await this.#client.resizeVolume(volumeId, sizeGigabytes, this.region, signal);
    } catch (err) {
      if (isApiStatus(err, 404)) throw err.withCode(Code.NotFound, `volume ${volumeId} does not exist`);
      if (isApiStatus(err, 422, /upward|larger|greater|increase/i)) {
        // Already that large (a retry, or resized outside the driver): report the real size.
        const volume = await this.#getDoVolume(volumeId, signal);
        if (volume === undefined) throw NotFound("volume %s does not exist", volumeId);
        if (volume.size_gigabytes * GIB >= sizeBytes) return volume.size_gigabytes * GIB;
        throw err;
      }
      if (isApiStatus(err, 422, /at most|maximum|exceed/i)) throw err.withCode(Code.OutOfRange, err.rawMessage);
      throw err;
    }
    await waitForAction(this.#client, volumeId, action, signal, this.#polling, this.#watch);
    return sizeGigabytes * GIB;
  }

  availableCapacity(_parameters: StringMap, _topology: Topology | undefined, _signal: AbortSignal): Promise<number> {
    return Promise.reject(Unimplemented("GetCapacity is not supported by the DigitalOcean backend"));
  }

  // ---------------------------------------------------------------- snapshots

  async findSnapshotByName(name: string, sourceVolumeId: string, signal: AbortSignal): Promise<Snapshot | undefined> {
    const found = await this.#findDoSnapshot(name, sourceVolumeId, signal);
    return found === undefined ? undefined : toSnapshot(found);
  }

  async getSnapshot(snapshotId: string, signal: AbortSignal): Promise<Snapshot | undefined> {
    const found = await this.#getDoSnapshot(snapshotId, signal);
    return found === undefined ? undefined : toSnapshot(found);
  }

  async createSnapshot(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot> {
    try {
      const created = await this.#client.createVolumeSnapshot(
        spec.sourceVolumeId,
        { name: spec.name, ...(this.#o.tag !== "" ? { tags: [this.#o.tag] } : {}) },
        signal,
      );
      return toSnapshot(created);
    } catch (err) {
      if (isApiStatus(err, 404)) throw err.withCode(Code.NotFound, `source volume ${spec.sourceVolumeId} does not exist`);
      if (isApiStatus(err, 409) || isApiStatus(err, 422, /already exists|already in use/i)) {
        // A retry of a create that succeeded, or the name taken by another volume's snapshot.
        const existing = await this.#findDoSnapshot(spec.name, spec.sourceVolumeId, signal);
        if (existing !== undefined) return toSnapshot(existing);
        throw err.withCode(Code.AlreadyExists, `snapshot name ${spec.name} is already used by a snapshot of another volume`);
      }
      throw err;
    }
  }

  async deleteSnapshot(snapshotId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.#client.deleteSnapshot(snapshotId, signal);
    } catch (err) {
      // 404: gone already; 400: the id is not a snapshot id at all, so no such snapshot.
      if (isApiStatus(err, 404) || isApiStatus(err, 400)) return;
      throw err;
    }
  }

  async listSnapshots(filter: SnapshotFilter, maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Snapshot>> {
    if (filter.snapshotId !== undefined && filter.snapshotId !== "") {
      const found = startingToken === "" ? await this.#getDoSnapshot(filter.snapshotId, signal) : undefined;
      const matches =
        found !== undefined &&
        (filter.sourceVolumeId === undefined || filter.sourceVolumeId === "" || found.resource_id === filter.sourceVolumeId);
      return { items: matches ? [toSnapshot(found)] : [], nextToken: "" };
    }
    const source = filter.sourceVolumeId;
    const page = await listRange<DoSnapshot>(
      async (request) => {
        if (source === undefined || source === "") return this.#client.listVolumeSnapshotsOfAccount(request, signal);
        try {
          return await this.#client.listVolumeSnapshots(source, request, signal);
        } catch (err) {
          if (isApiStatus(err, 404)) return { items: [], nextPage: undefined, total: 0 };
          throw err;
        }
      },
      maxEntries,
      startingToken,
      MAX_PER_PAGE,
    );
    return { items: page.items.map(toSnapshot), nextToken: page.nextToken };
  }

  async close(): Promise<void> {
    // Nothing held: the HTTP client's connections close when idle.
  }

  // ---------------------------------------------------------------- helpers

  async #getDoVolume(volumeId: string, signal: AbortSignal): Promise<DoVolume | undefined> {
    try {
      return await this.#client.getVolume(volumeId, signal);
    } catch (err) {
      if (isApiStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async #getDoSnapshot(snapshotId: string, signal: AbortSignal): Promise<DoSnapshot | undefined> {
    try {
      const found = await this.#client.getSnapshot(snapshotId, signal);
      return found.resource_type === "volume" ? found : undefined;
    } catch (err) {
      if (isApiStatus(err, 404) || isApiStatus(err, 400)) return undefined;
      throw err;
    }
  }

  async #findDoSnapshot(name: string, sourceVolumeId: string, signal: AbortSignal): Promise<DoSnapshot | undefined> {
    let page: number | undefined = 1;
    while (page !== undefined) {
      let result;
      if (sourceVolumeId !== "") {
        try {
          result = await this.#client.listVolumeSnapshots(sourceVolumeId, { page, perPage: MAX_PER_PAGE }, signal);
        } catch (err) {
          if (isApiStatus(err, 404)) return undefined;
          throw err;
        }
      } else {
        result = await this.#client.listVolumeSnapshotsOfAccount({ page, perPage: MAX_PER_PAGE }, signal);
      }
      const found = result.items.find((s) => s.name === name);
      if (found !== undefined) return found;
      page = result.nextPage;
    }
    return undefined;
  }

  #checkTopology(requisite: readonly Topology[]): void {
    if (requisite.length === 0) return;
    if (requisite.some((t) => t.region === undefined || t.region === this.region)) return;
    const asked = [...new Set(requisite.map((t) => t.region))].join(", ");
    throw ResourceExhausted("volumes can be created only in region %s; the requisite topology asks for %s", this.region, asked);
  }

  /**
   * Clone = snapshot of the source + restore. The snapshot's name derives from
   * the new volume's name, so a retried CreateVolume reuses it; it is deleted
   * once the clone exists.
   */
  async #snapshotForClone(volumeName: string, sourceVolumeId: string, sizeGigabytes: number, signal: AbortSignal): Promise<string> {
    const source = await this.#getDoVolume(sourceVolumeId, signal);
    if (source === undefined) throw NotFound("source volume %s does not exist", sourceVolumeId);
    if (source.region.slug !== this.region) {
      throw InvalidArgument("source volume %s is in %s; volumes are created in %s", sourceVolumeId, source.region.slug, this.region);
    }
    if (source.size_gigabytes > sizeGigabytes) {
      throw OutOfRange(
        "source volume %s has %d GiB; a clone of %d GiB cannot hold it",
        sourceVolumeId,
        source.size_gigabytes,
        sizeGigabytes,
      );
    }
    const name = `${doVolumeName(volumeName)}-clone-source`;
    let snapshot = await this.#findDoSnapshot(name, sourceVolumeId, signal);
    snapshot ??= await this.#client.createVolumeSnapshot(
      sourceVolumeId,
      { name, ...(this.#o.tag !== "" ? { tags: [this.#o.tag] } : {}) },
      signal,
    );
    const created = snapshot;
    const progress = { log: this.#o.log, intervalMs: this.#polling.progressIntervalMs, fields: { sourceVolumeId, snapshotId: created.id } };
    return withProgress(`DigitalOcean snapshot ${created.id} of volume ${sourceVolumeId} (clone source)`, progress, async () => {
      let current = created;
      let delay = this.#polling.firstPollMs;
      while (current.regions.length === 0) {
        await sleep(jitter(delay, 0.25), signal, `waiting for snapshot ${current.id} of volume ${sourceVolumeId} to clone it`);
        delay = Math.min(this.#polling.maxPollMs, delay * this.#polling.factor);
        current = await this.#client.getSnapshot(current.id, signal);
      }
      return current.id;
    });
  }

  async #deleteTemporarySnapshot(snapshotId: string, signal: AbortSignal): Promise<void> {
    try {
      await this.deleteSnapshot(snapshotId, signal);
    } catch (err) {
      this.#o.log.warn(
        { snapshotId, err: err instanceof Error ? err.message : String(err) },
        "could not delete the temporary snapshot of a clone; delete it by hand",
      );
    }
  }

  async #afterCreateFailure(err: unknown, spec: NewVolume, sizeGigabytes: number, signal: AbortSignal): Promise<DoVolume> {
    if (isApiStatus(err, 409) || (isDoApiError(err) && err.code === Code.AlreadyExists)) {
      // The name exists: a create that succeeded before a retry, or a concurrent one.
      const doName = doVolumeName(spec.name);
      const page = await this.#client.listVolumes({ name: doName, region: this.region }, signal);
      const existing = page.items.find((v) => v.name === doName && v.region.slug === this.region);
      if (existing !== undefined && existing.size_gigabytes === sizeGigabytes) return existing;
      throw AlreadyExists(
        "volume %s already exists with %s GiB; %d GiB was asked for",
        spec.name,
        existing?.size_gigabytes ?? "another size",
        sizeGigabytes,
      );
    }
    if (isApiStatus(err, 404) && spec.source?.kind === "snapshot") throw NotFound("snapshot %s does not exist", spec.source.id);
    if (isApiStatus(err, 422, /size/i)) throw err.withCode(Code.OutOfRange, err.rawMessage);
    if (isApiStatus(err, 422, /not available|not ready/i))
      throw err.withCode(Code.Unavailable, `snapshot ${spec.source?.id ?? ""} is not ready yet; retry once it is (${err.apiMessage})`);
    throw err;
  }

  /**
   * ControllerModifyVolume: `tags` makes the volume's tags exactly the list given, plus --do-tag: one GET of
   * the volume, then one request per tag to add (two more when the tag does not exist yet) and one per tag to
   * remove. Asking again for what the volume has is the GET alone.
   */
  async modifyVolume(volumeId: string, mutableParameters: StringMap, signal: AbortSignal): Promise<void> {
    const wanted = tagsParameter(mutableParameters);
    const volume = await this.#getDoVolume(volumeId, signal);
    if (volume === undefined) throw NotFound("volume %s does not exist", volumeId);
    if (wanted === undefined) return;
    const target = new Set(this.#tagsFor(wanted));
    const current = new Set(volume.tags ?? []);
    const resources = [{ resource_id: volumeId, resource_type: "volume" as const }];
    for (const tag of target) if (!current.has(tag)) await this.#tagVolume(tag, volumeId, signal);
    for (const tag of current) {
      if (target.has(tag)) continue;
      try {
        await this.#client.untagResources(tag, resources, signal);
      } catch (err) {
        // The tag is gone already (deleted meanwhile): the volume no longer carries it.
        if (!isApiStatus(err, 404)) throw err;
      }
    }
    this.#o.log.info({ volumeId, tags: [...target] }, "volume tags modified");
  }

  /** The tags a volume should carry: the ones asked for and --do-tag. */
  #tagsFor(tags: readonly string[]): string[] {
    return [...new Set([...tags, ...(this.#o.tag !== "" ? [this.#o.tag] : [])])];
  }

  /** Tag a volume, creating the tag first if it does not exist. */
  async #tagVolume(tag: string, volumeId: string, signal: AbortSignal): Promise<void> {
    const resources = [{ resource_id: volumeId, resource_type: "volume" as const }];
    try {
      await this.#client.tagResources(tag, resources, signal);
    } catch (err) {
      if (!isApiStatus(err, 404)) throw err;
      // The tag does not exist yet (or the volume does not): create it and try once more.
      try {
        await this.#client.createTag(tag, signal);
      } catch (createErr) {
        if (!isApiStatus(createErr, 422) && !isApiStatus(createErr, 409)) throw createErr;
      }
      try {
        await this.#client.tagResources(tag, resources, signal);
      } catch (retryErr) {
        if (isApiStatus(retryErr, 404)) throw retryErr.withCode(Code.NotFound, `volume ${volumeId} does not exist`);
        throw retryErr;
      }
    }
  }

  async #ensureTagged(volumeId: string, signal: AbortSignal): Promise<void> {
    const tag = this.#o.tag;
    if (tag === "" || this.#tagged.has(volumeId)) return;
    await this.#tagVolume(tag, volumeId, signal);
    this.#rememberTagged(volumeId);
  }

  #rememberTagged(volumeId: string): void {
    if (this.#tagged.size >= TAGGED_MEMORY) this.#tagged.clear();
    this.#tagged.add(volumeId);
  }

  #publishContext(name: string): StringMap {
    return { [publishContextKey(this.#o.driverName)]: name };
  }

  #attachedElsewhere(volumeId: string, droplets: readonly number[]) {
    return FailedPrecondition("volume %s is attached to droplet %s; unpublish it there first", volumeId, droplets.join(", "));
  }
}

/** The client for a configuration: base URL, token, User-Agent, --do-api-rate-limit. */
export function clientFor(config: Config, log: Logger, metrics: DriverMetrics = NO_METRICS): DigitalOceanClient {
  const transport = new Transport({
    baseUrl: config.digitalocean.apiUrl,
    token: config.digitalocean.token,
    userAgent: `do-csi-plugin/${config.version} (${config.driverName})`,
    rateLimit: config.digitalocean.apiRateLimit,
    log,
    metrics,
  });
  return new DigitalOceanClient(transport);
}

export async function openDigitalOceanController(
  config: Config,
  log: Logger,
  metrics: DriverMetrics = NO_METRICS,
): Promise<ControllerBackend> {
  if (config.digitalocean.token === "") throw new Error("the DigitalOcean controller needs --token");
  // --region makes the controller independent of the metadata service (so it runs outside a droplet).
  const region =
    config.digitalocean.region !== "" ? config.digitalocean.region : await new MetadataClient(config.digitalocean.metadataUrl).region();
  const client = clientFor(config, log, metrics);
  log.debug({ region, apiUrl: config.digitalocean.apiUrl }, "DigitalOcean controller backend ready");
  return new DigitalOceanController({
    client,
    region,
    driverName: config.driverName,
    tag: config.digitalocean.tag,
    defaultPageSize: config.digitalocean.defaultVolumesPageSize,
    log,
    metrics,
  });
}
