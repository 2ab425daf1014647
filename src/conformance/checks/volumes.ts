import { Code } from "@connectrpc/connect";
import { fail, verify, type Check } from "../check.js";
import { AccessMode, type CheckRun, type CreateVolumeRequestInit } from "../context.js";
import { codeName, describeOutcome, expectCode, expectOk, outcome } from "../expect.js";
import { ControllerCap, needs, PluginService } from "../profile.js";
import { MAX_NAME_LENGTH } from "../spec-rules.js";
import { describeVolume, settle, sweepDeadlines, unknownSnapshotId, unknownVolumeId, volumeProblems } from "./shared.js";

const needCreate = needs.controller(ControllerCap.CREATE_DELETE_VOLUME);

/** A request that is valid except for what `change` does to it; nothing is created when the driver rejects it. */
async function expectRejected(run: CheckRun, what: string, request: CreateVolumeRequestInit, ...codes: Code[]): Promise<void> {
  run.step(what);
  const result = await outcome(run.controller.createVolume(request, run.call()));
  if (result.ok && result.value.volume !== undefined && result.value.volume.volumeId !== "")
    run.registerVolume(result.value.volume.volumeId);
  if (result.ok) fail(`${what}: expected ${codes.map(codeName).join(" or ")}, got OK`);
  await expectCode(what, Promise.reject(result.error), ...codes);
}

/** Create with `request` and verify the response by the Volume message's rules. */
async function createAndValidate(run: CheckRun, request: CreateVolumeRequestInit, what = "CreateVolume") {
  const volume = await run.createVolume(request, what);
  const problems = volumeProblems(run, request, volume);
  verify(problems.length === 0, `${what} returned ${describeVolume(volume)}: ${problems.join("; ")}`);
  return volume;
}

function padName(run: CheckRun, label: string, length: number): string {
  const base = run.uniqueName(label);
  return `${base}-${"x".repeat(length)}`.slice(0, length);
}

export const createVolumeChecks: Check[] = [
  {
    id: "create-volume.missing-name",
    group: "CreateVolume",
    title: "CreateVolume without a name fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "CreateVolumeRequest.name is REQUIRED; a missing required field is 3 INVALID_ARGUMENT",
    skipUnless: needCreate,
    async run(run) {
      await expectRejected(run, "CreateVolume without a name", run.volumeRequest(""), Code.InvalidArgument);
    },
  },
  {
    id: "create-volume.missing-capabilities",
    group: "CreateVolume",
    title: "CreateVolume without volume_capabilities fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "volume_capabilities is REQUIRED (a REQUIRED repeated field MUST contain at least 1 element)",
    skipUnless: needCreate,
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume without volume_capabilities",
        run.volumeRequest(run.uniqueName("nocaps"), "mount", { volumeCapabilities: [] }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-volume.missing-access-mode",
    group: "CreateVolume",
    title: "CreateVolume with a capability lacking its access mode fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "VolumeCapability.access_mode is REQUIRED, and AccessMode.mode is REQUIRED (UNKNOWN is no mode)",
    skipUnless: needCreate,
    async run(run) {
      const mount = { case: "mount" as const, value: { fsType: run.options.fsType } };
      await expectRejected(
        run,
        "CreateVolume with a capability without access_mode",
        run.volumeRequest(run.uniqueName("nomode"), "mount", { volumeCapabilities: [{ accessType: mount }] }),
        Code.InvalidArgument,
      );
      await expectRejected(
        run,
        "CreateVolume with access mode UNKNOWN",
        run.volumeRequest(run.uniqueName("unknownmode"), "mount", {
          volumeCapabilities: [{ accessType: mount, accessMode: { mode: AccessMode.UNKNOWN } }],
        }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-volume.missing-access-type",
    group: "CreateVolume",
    title: "CreateVolume with a capability that is neither block nor mount fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "VolumeCapability: one of the access_type fields (block, mount) MUST be specified",
    skipUnless: needCreate,
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume with a capability without access_type",
        run.volumeRequest(run.uniqueName("notype"), "mount", {
          volumeCapabilities: [{ accessMode: { mode: AccessMode.SINGLE_NODE_WRITER } }],
        }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-volume.negative-capacity",
    group: "CreateVolume",
    title: "CreateVolume with a negative required_bytes or limit_bytes is refused",
    level: "MUST",
    rule: "CapacityRange: the value of required_bytes / limit_bytes MUST NOT be negative (invalid field: INVALID_ARGUMENT; unsupported range: OUT_OF_RANGE)",
    skipUnless: needCreate,
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume with required_bytes -1",
        run.volumeRequest(run.uniqueName("negreq"), "mount", { capacityRange: { requiredBytes: -1n } }),
        Code.InvalidArgument,
        Code.OutOfRange,
      );
      await expectRejected(
        run,
        "CreateVolume with limit_bytes -1",
        run.volumeRequest(run.uniqueName("neglim"), "mount", { capacityRange: { limitBytes: -1n } }),
        Code.InvalidArgument,
        Code.OutOfRange,
      );
    },
  },
  {
    id: "create-volume.required-above-limit",
    group: "CreateVolume",
    title: "CreateVolume with required_bytes above limit_bytes is refused",
    level: "MUST",
    rule: "Volume MUST be at least required_bytes and MUST not be bigger than limit_bytes: no volume satisfies the range (OUT_OF_RANGE or INVALID_ARGUMENT)",
    skipUnless: needCreate,
    async run(run) {
      const size = run.options.testVolumeSize;
      await expectRejected(
        run,
        "CreateVolume with required_bytes > limit_bytes",
        run.volumeRequest(run.uniqueName("badrange"), "mount", { capacityRange: { requiredBytes: size * 2n, limitBytes: size } }),
        Code.OutOfRange,
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-volume.banned-name-characters",
    group: "CreateVolume",
    title: "CreateVolume with a control character in the name fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "Names may be any Unicode string except those containing U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F; an invalid field is 3 INVALID_ARGUMENT",
    skipUnless: needCreate,
    async run(run) {
      for (const ch of ["\u0001", "\u001b", "\u007f", "\u0085"]) {
        const name = `${run.uniqueName("ctl")}${ch}x`;
        await expectRejected(
          run,
          `CreateVolume with U+${ch.charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()} in the name`,
          run.volumeRequest(name),
          Code.InvalidArgument,
        );
      }
    },
  },
  {
    id: "create-volume.no-capacity",
    group: "CreateVolume",
    title: "CreateVolume without a capacity range creates a valid volume",
    level: "MUST",
    rule: "capacity_range is OPTIONAL: if not specified, the Plugin MAY choose an implementation-defined capacity",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(run.uniqueName("nocap"));
      delete request.capacityRange;
      run.step("CreateVolume without capacity_range");
      await createAndValidate(run, request);
    },
  },
  {
    id: "create-volume.required-bytes",
    group: "CreateVolume",
    title: "CreateVolume honours required_bytes and returns a well-formed volume",
    level: "MUST",
    rule: "capacity_range MUST always be honored; volume_id is REQUIRED (128 bytes max); volume_context at most 4 KiB; accessible_topology only with VOLUME_ACCESSIBILITY_CONSTRAINTS",
    skipUnless: needCreate,
    async run(run) {
      run.step("CreateVolume with required_bytes");
      await createAndValidate(run, run.volumeRequest(run.uniqueName("required")));
    },
  },
  {
    id: "create-volume.exact-capacity",
    group: "CreateVolume",
    title: "CreateVolume with required_bytes = limit_bytes creates a volume of exactly that size, or answers OUT_OF_RANGE",
    level: "MUST",
    rule: "To specify an exact size, required_bytes and limit_bytes SHALL be set to the same value; the range MUST be honored (or refused with OUT_OF_RANGE)",
    skipUnless: needCreate,
    async run(run) {
      const size = run.options.testVolumeSize;
      const request = run.volumeRequest(run.uniqueName("exact"), "mount", { capacityRange: { requiredBytes: size, limitBytes: size } });
      run.step("CreateVolume with required_bytes = limit_bytes");
      const result = await outcome(run.controller.createVolume(request, run.call()));
      if (!result.ok && result.code === Code.OutOfRange) {
        run.note(`the driver cannot make a volume of exactly ${size} bytes (OUT_OF_RANGE)`);
        return;
      }
      if (!result.ok) fail(`CreateVolume with an exact size: expected OK or OUT_OF_RANGE, got ${describeOutcome(result)}`);
      const volume = result.value.volume;
      if (volume === undefined) fail("CreateVolume returned no volume");
      run.registerVolume(volume.volumeId);
      const problems = volumeProblems(run, request, volume);
      verify(problems.length === 0, problems.join("; "));
      verify(volume.capacityBytes === 0n || volume.capacityBytes === size, `capacity_bytes is ${volume.capacityBytes}, not ${size}`);
    },
  },
  {
    id: "create-volume.limit-only",
    group: "CreateVolume",
    title: "CreateVolume with only limit_bytes creates a volume no bigger than the limit, or answers OUT_OF_RANGE",
    level: "MUST",
    rule: "limit_bytes: Volume MUST not be bigger than this",
    skipUnless: needCreate,
    async run(run) {
      const size = run.options.testVolumeSize;
      const request = run.volumeRequest(run.uniqueName("limit"), "mount", { capacityRange: { limitBytes: size } });
      run.step("CreateVolume with limit_bytes only");
      const result = await outcome(run.controller.createVolume(request, run.call()));
      if (!result.ok && result.code === Code.OutOfRange) {
        run.note("the driver cannot make a volume within that limit (OUT_OF_RANGE)");
        return;
      }
      if (!result.ok) fail(`CreateVolume with limit_bytes only: expected OK or OUT_OF_RANGE, got ${describeOutcome(result)}`);
      const volume = result.value.volume;
      if (volume === undefined) fail("CreateVolume returned no volume");
      run.registerVolume(volume.volumeId);
      const problems = volumeProblems(run, request, volume);
      verify(problems.length === 0, problems.join("; "));
    },
  },
  {
    id: "create-volume.idempotent",
    group: "CreateVolume",
    title: "CreateVolume repeated with the same arguments returns the same volume",
    level: "MUST",
    rule: "CreateVolume MUST be idempotent: the same name and compatible arguments reply 0 OK with the corresponding volume",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(run.uniqueName("idem"));
      run.step("CreateVolume (first call)");
      const first = await createAndValidate(run, request);
      for (let i = 2; i <= run.options.idempotentCount; i++) {
        run.step(`CreateVolume (call ${i})`);
        const again = await run.createVolume(request, `CreateVolume (call ${i})`);
        verify(
          describeVolume(again) === describeVolume(first),
          `call ${i} returned ${describeVolume(again)}, the first ${describeVolume(first)}`,
        );
      }
    },
  },
  {
    id: "create-volume.same-name-other-capacity",
    group: "CreateVolume",
    title: "CreateVolume with an existing name but an incompatible capacity fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Volume already exists but is incompatible with the specified capacity_range: 6 ALREADY_EXISTS",
    skipUnless: needCreate,
    async run(run) {
      const size = run.options.testVolumeSize;
      const name = run.uniqueName("conflict");
      const first = run.volumeRequest(name, "mount", { capacityRange: { requiredBytes: size, limitBytes: size } });
      run.step("CreateVolume with an exact size");
      const created = await outcome(run.controller.createVolume(first, run.call()));
      let volumeCapacity = size;
      if (!created.ok && created.code === Code.OutOfRange) {
        run.step("CreateVolume with required_bytes only (exact sizes are refused)");
        const volume = await run.createVolume(run.volumeRequest(name));
        volumeCapacity = volume.capacityBytes > 0n ? volume.capacityBytes : size;
      } else if (!created.ok) {
        fail(`CreateVolume: ${describeOutcome(created)}`);
      } else if (created.value.volume !== undefined) {
        run.registerVolume(created.value.volume.volumeId);
        if (created.value.volume.capacityBytes > 0n) volumeCapacity = created.value.volume.capacityBytes;
      }
      const bigger = volumeCapacity * 2n;
      await expectRejected(
        run,
        "CreateVolume with the same name and a larger exact size",
        run.volumeRequest(name, "mount", { capacityRange: { requiredBytes: bigger, limitBytes: bigger } }),
        Code.AlreadyExists,
      );
    },
  },
  {
    id: "create-volume.max-length-name",
    group: "CreateVolume",
    title: "CreateVolume accepts a 128-character name, idempotently",
    level: "MUST",
    rule: "Any Unicode string that conforms to the length limit (128 bytes) is allowed as a name; CreateVolume MUST be idempotent",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(padName(run, "maxlen", MAX_NAME_LENGTH));
      run.step("CreateVolume with a 128-character name");
      const first = await createAndValidate(run, request);
      run.step("CreateVolume with the same name again");
      const again = await run.createVolume(request);
      verify(again.volumeId === first.volumeId, `the repeated call returned volume ${again.volumeId}, the first ${first.volumeId}`);
    },
  },
  {
    id: "create-volume.unicode-name",
    group: "CreateVolume",
    title: "CreateVolume accepts names with spaces and non-ASCII characters, idempotently",
    level: "MUST",
    rule: "Any Unicode string that conforms to the length limit is allowed except those containing the banned control characters",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(`${run.uniqueName("uni")} Ünïcödé 名前 ✓`);
      run.step("CreateVolume with a non-ASCII name");
      const first = await createAndValidate(run, request);
      run.step("CreateVolume with the same name again");
      const again = await run.createVolume(request);
      verify(again.volumeId === first.volumeId, `the repeated call returned volume ${again.volumeId}, the first ${first.volumeId}`);
    },
  },
  {
    id: "create-volume.distinct-names",
    group: "CreateVolume",
    title: "CreateVolume with names that differ only in case or punctuation creates distinct volumes",
    level: "MUST",
    rule: "The name is the idempotency key; volume_id MUST uniquely identify a volume: different names never share one volume",
    skipUnless: needCreate,
    async run(run) {
      const base = run.uniqueName("distinct");
      const names = [`${base}-a.b`, `${base}-a_b`, `${base}-A-B`, `${base}-a-b`];
      const ids = new Map<string, string>();
      for (const name of names) {
        run.step(`CreateVolume ${JSON.stringify(name)}`);
        const volume = await run.createVolume(run.volumeRequest(name));
        const earlier = ids.get(volume.volumeId);
        verify(
          earlier === undefined,
          `names ${JSON.stringify(earlier)} and ${JSON.stringify(name)} returned the same volume ${volume.volumeId}`,
        );
        ids.set(volume.volumeId, name);
      }
    },
  },
  {
    id: "create-volume.empty-content-source",
    group: "CreateVolume",
    title: "CreateVolume with a content source that names no source fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "VolumeContentSource: one of the type fields MUST be specified",
    skipUnless: needCreate,
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume with an empty volume_content_source",
        run.volumeRequest(run.uniqueName("emptysrc"), "mount", { volumeContentSource: {} }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-volume.source-snapshot-not-found",
    group: "CreateVolume",
    title: "CreateVolume from a snapshot that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Source does not exist: 5 NOT_FOUND",
    skipUnless: needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CREATE_DELETE_SNAPSHOT),
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume from an unknown snapshot",
        run.volumeRequest(run.uniqueName("nosnap"), "mount", {
          volumeContentSource: { type: { case: "snapshot", value: { snapshotId: unknownSnapshotId() } } },
        }),
        Code.NotFound,
      );
    },
  },
  {
    id: "create-volume.source-volume-not-found",
    group: "CreateVolume",
    title: "CreateVolume from a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Source does not exist: 5 NOT_FOUND",
    skipUnless: needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CLONE_VOLUME),
    async run(run) {
      await expectRejected(
        run,
        "CreateVolume from an unknown volume",
        run.volumeRequest(run.uniqueName("novol"), "mount", {
          volumeContentSource: { type: { case: "volume", value: { volumeId: unknownVolumeId() } } },
        }),
        Code.NotFound,
      );
    },
  },
  {
    id: "create-volume.topology",
    group: "CreateVolume",
    title: "CreateVolume with the node's topology as requisite makes a volume accessible from that node",
    level: "MUST",
    rule: "If requisite is specified, the provisioned volume MUST be accessible from at least one of the requisite topologies; keys follow the Topology rules",
    skipUnless(profile) {
      const base = needCreate(profile);
      if (base !== undefined) return base;
      if (!profile.pluginServices.has(PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS))
        return "VOLUME_ACCESSIBILITY_CONSTRAINTS is not advertised";
      const segments = profile.nodeInfo?.accessibleTopology?.segments;
      return segments === undefined || Object.keys(segments).length === 0 ? "NodeGetInfo reports no topology" : undefined;
    },
    async run(run) {
      const request = run.volumeRequest(run.uniqueName("topo"));
      run.step("CreateVolume with the node's topology as requisite and preferred");
      const volume = await createAndValidate(run, request);
      const node = run.profile.nodeInfo?.accessibleTopology?.segments ?? {};
      if (volume.accessibleTopology.length === 0) {
        run.note("the volume reports no accessible_topology (the CO may use it anywhere)");
        return;
      }
      const admits = volume.accessibleTopology.some((t) => Object.entries(t.segments).every(([k, v]) => node[k] === v));
      verify(
        admits,
        `no accessible_topology of the volume (${JSON.stringify(volume.accessibleTopology.map((t) => t.segments))}) matches the node's ${JSON.stringify(node)}`,
      );
    },
  },
  {
    id: "create-volume.retry-after-deadline",
    group: "CreateVolume",
    title: "CreateVolume cut short by deadlines and retried converges to one volume",
    level: "MUST",
    rule: "Any RPC MAY timeout and MAY be retried; idempotency ensures that a retried call with the same fields continues where it left off",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(run.uniqueName("deadline"));
      const listing = run.hasControllerCap(ControllerCap.LIST_VOLUMES);
      const before = new Set(listing ? (await run.listAllVolumes()).entries.map((e) => e.volume?.volumeId ?? "") : []);
      const returned = new Set<string>();
      const remember = (volumeId: string | undefined) => {
        if (volumeId === undefined || volumeId === "") return;
        returned.add(volumeId);
        run.registerVolume(volumeId);
      };
      run.step("CreateVolume with deadlines of 2 ms and up until one completes");
      const { cut } = await sweepDeadlines(async (timeoutMs) => {
        const response = await run.controller.createVolume(request, run.call(timeoutMs));
        remember(response.volume?.volumeId);
        return response;
      });
      run.note(`${cut} attempt(s) were cut by their deadline`);
      run.step("CreateVolume without a short deadline, twice");
      const first = (await settle("CreateVolume after attempts cut by deadlines", () => run.controller.createVolume(request, run.call())))
        .volume;
      remember(first?.volumeId);
      const second = (await settle("CreateVolume once more", () => run.controller.createVolume(request, run.call()))).volume;
      remember(second?.volumeId);
      const problems: string[] = [];
      if (first === undefined || first.volumeId === "") problems.push("CreateVolume returned no volume");
      if (returned.size > 1) problems.push(`the calls returned ${returned.size} different volumes: ${[...returned].join(", ")}`);
      if (listing) {
        // A volume made by a cut attempt that no answer named is left behind for good: the CO never learns its id.
        const unnamed = (await run.listAllVolumes()).entries
          .map((e) => e.volume?.volumeId ?? "")
          .filter((id) => !before.has(id) && !returned.has(id));
        if (unnamed.length > 0)
          problems.push(
            `volumes no answer returned appeared (leaked by the cut attempts; the suite cannot delete them): ${unnamed.join(", ")}`,
          );
      }
      verify(problems.length === 0, problems.join("; "));
    },
  },
  {
    id: "create-volume.concurrent-same-name",
    group: "CreateVolume",
    title: "Concurrent CreateVolume calls with one name provision exactly one volume",
    level: "SHOULD",
    rule: "The Plugin SHOULD ensure that multiple CreateVolume calls for the same name do not result in more than one piece of storage; ABORTED MAY reject secondary calls",
    skipUnless: needCreate,
    async run(run) {
      const request = run.volumeRequest(run.uniqueName("race"));
      run.step("5 concurrent CreateVolume calls with the same name");
      const results = await Promise.all(Array.from({ length: 5 }, () => outcome(run.controller.createVolume(request, run.call()))));
      const ids = new Set<string>();
      for (const result of results) {
        if (result.ok) {
          const id = result.value.volume?.volumeId ?? "";
          ids.add(id);
          if (id !== "") run.registerVolume(id);
        } else if (result.code !== Code.Aborted) {
          fail(`a concurrent CreateVolume failed with ${describeOutcome(result)} (only OK or ABORTED are expected)`);
        }
      }
      run.step("CreateVolume once more, alone");
      const final = await run.createVolume(request);
      ids.add(final.volumeId);
      verify(ids.size === 1, `the calls returned ${ids.size} different volumes: ${[...ids].join(", ")}`);
    },
  },
];

export const deleteVolumeChecks: Check[] = [
  {
    id: "delete-volume.missing-id",
    group: "DeleteVolume",
    title: "DeleteVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "DeleteVolumeRequest.volume_id is REQUIRED",
    skipUnless: needCreate,
    async run(run) {
      await expectCode(
        "DeleteVolume without volume_id",
        run.controller.deleteVolume({ secrets: run.secrets("DeleteVolume") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "delete-volume.unknown-id",
    group: "DeleteVolume",
    title: "DeleteVolume of a volume that does not exist succeeds",
    level: "MUST",
    rule: "If a volume corresponding to the specified volume_id does not exist, the Plugin MUST reply 0 OK",
    skipUnless: needCreate,
    async run(run) {
      await expectOk(
        "DeleteVolume of an unknown volume",
        run.controller.deleteVolume({ volumeId: unknownVolumeId(), secrets: run.secrets("DeleteVolume") }, run.call()),
      );
    },
  },
  {
    id: "delete-volume.idempotent",
    group: "DeleteVolume",
    title: "DeleteVolume removes the volume and succeeds when repeated",
    level: "MUST",
    rule: "DeleteVolume MUST be idempotent; afterwards the volume no longer exists (ValidateVolumeCapabilities: NOT_FOUND; not listed)",
    skipUnless: needCreate,
    async run(run) {
      const volume = await run.createTestVolume("delete");
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`DeleteVolume (call ${i})`);
        await run.deleteVolume(volume.volumeId, `DeleteVolume (call ${i})`);
      }
      run.step("ValidateVolumeCapabilities of the deleted volume");
      await expectCode(
        "ValidateVolumeCapabilities of a deleted volume",
        run.controller.validateVolumeCapabilities(
          { volumeId: volume.volumeId, volumeCapabilities: [run.mountCapability()], secrets: run.secrets("ValidateVolumeCapabilities") },
          run.call(),
        ),
        Code.NotFound,
      );
      if (run.hasControllerCap(ControllerCap.LIST_VOLUMES)) {
        run.step("ListVolumes after the delete");
        const { entries } = await run.listAllVolumes();
        verify(!entries.some((e) => e.volume?.volumeId === volume.volumeId), `ListVolumes still lists deleted volume ${volume.volumeId}`);
      }
    },
  },
];
