import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { create, toBinary, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { Controller, GroupController, Identity, Node, SnapshotMetadata } from "../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { callMethod } from "../support/call-method.js";
import { DRIVER_ENTRY, startDriver, type DriverProcess } from "../support/driver-process.js";
import { filledRequest, stringSlots, withSlot } from "../support/string-slots.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// One oversized request must not stall the connection it shares with every other call of a sidecar: each
// RPC of every service, sent 1 MiB strings in every string field (and in each field alone), answers at once
// with an error whose status is short, while a Probe on the same connection answers at once too. This runs
// the built program, as a CO talks to it.

const MiB = 1024 * 1024;
/** A status message is capped at 1 KiB on the wire (grpc-message is percent-encoded). */
const MAX_STATUS_BYTES = 1024;
/** An oversized call must answer well within this; the Probe beside it too. */
const PROMPT_MS = 1000;
/**
 * A request far above the receive limit is refused on its announced length, but the client still writes all
 * of it before it reads the answer; sending 16 MiB over a unix socket of a busy machine takes time of its own.
 */
const PROMPT_MS_ABOVE_RECEIVE_LIMIT = 3000;
const RECEIVE_LIMIT = 4 * MiB;
/** A few hundred calls of megabytes each: minutes on a busy machine. */
const TEST_TIMEOUT_MS = 300_000;

/** 1 MiB strings: plain ASCII, and characters that grpc-message percent-encodes or that must be escaped. */
const FILLS = [
  { name: "ASCII", value: "a".repeat(MiB) },
  { name: "é", value: "é".repeat(MiB / 2) },
  { name: "newline", value: "\n".repeat(MiB) },
] as const;

/** Codes that say the server failed, not that the request was refused: never the answer to an oversized request. */
const SERVER_FAILURES = new Set([Code.Internal, Code.Unknown, Code.DeadlineExceeded, Code.Unavailable, Code.Canceled, Code.DataLoss]);

interface Case {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly what: string;
  readonly request: () => Message;
}

const sizeOf = (c: Case, request: Message) => toBinary(c.method.input, request).length;

/** For each method with strings: every string slot 1 MiB (each fill), and each slot alone 1 MiB with the others "x". */
function casesOf(services: readonly DescService[]): Case[] {
  return services.flatMap((service) =>
    service.methods.flatMap((method) => {
      const slots = stringSlots(method.input);
      if (slots.length === 0) return [];
      const every = FILLS.map((fill) => ({
        service,
        method,
        what: `every string field 1 MiB of ${fill.name}`,
        request: () => filledRequest(method.input, fill.value),
      }));
      const base = filledRequest(method.input, "x");
      const each = slots.map((slot, i) => {
        const fill = FILLS[i % FILLS.length] ?? FILLS[0];
        return {
          service,
          method,
          what: `${slot.path} 1 MiB of ${fill.name}`,
          request: () => withSlot(method.input, base, slot, fill.value),
        };
      });
      return [...every, ...each];
    }),
  );
}

/** Bytes of a status message as the server sends it (percent-encoded). */
const wireBytes = (message: string) => encodeURI(message).length;

interface Answer {
  readonly bytes: number;
  readonly code: Code | undefined;
  readonly message: string;
  readonly ms: number;
  readonly probeMs: number;
  readonly probeCode: Code | undefined;
}

/** Send the case's request and, at the same time on the same connection, a Probe. */
async function sendWithProbe(clients: CsiClients, c: Case): Promise<Answer> {
  const [probe] = Identity.methods.filter((m) => m.name === "Probe");
  if (probe === undefined) throw new Error("Identity has no Probe");
  const request = c.request();
  const [call, probed] = await Promise.all([
    callMethod(clients.transport, c.method, request, 10_000),
    callMethod(clients.transport, probe, create(probe.input), 10_000),
  ]);
  return {
    bytes: sizeOf(c, request),
    code: call.error?.code,
    message: call.error?.rawMessage ?? "",
    ms: call.ms,
    probeMs: probed.ms,
    probeCode: probed.error?.code,
  };
}

/**
 * Every case answers promptly with a refusal and a short status; the Probe beside it answers promptly and
 * well (behind a request above the receive limit, it shares the connection with megabytes in flight).
 */
async function expectAllRefused(clients: CsiClients, cases: readonly Case[], refusals: (c: Case) => ReadonlySet<Code> | undefined) {
  // The connection is open and both ends warm before anything is timed.
  expect((await clients.identity.probe({})).ready).toBe(true);
  const problems: string[] = [];
  const codes = new Map<string, number>();
  for (const c of cases) {
    const a = await sendWithProbe(clients, c);
    const label = `${c.service.name}.${c.method.name} with ${c.what}`;
    const name = a.code === undefined ? "OK" : Code[a.code];
    codes.set(name, (codes.get(name) ?? 0) + 1);
    const allowed = refusals(c);
    if (a.code === undefined || SERVER_FAILURES.has(a.code) || (allowed !== undefined && !allowed.has(a.code))) {
      problems.push(`${label}: answered ${name}: ${a.message.slice(0, 200)}`);
    }
    const prompt = a.bytes > RECEIVE_LIMIT ? PROMPT_MS_ABOVE_RECEIVE_LIMIT : PROMPT_MS;
    if (a.ms > prompt) problems.push(`${label}: a request of ${a.bytes} bytes answered after ${Math.round(a.ms)} ms`);
    if (wireBytes(a.message) > MAX_STATUS_BYTES) problems.push(`${label}: status message of ${wireBytes(a.message)} bytes`);
    if (a.probeCode !== undefined || a.probeMs > prompt) {
      problems.push(
        `${label}: the Probe beside it answered ${a.probeCode === undefined ? "OK" : Code[a.probeCode]} after ${Math.round(a.probeMs)} ms`,
      );
    }
  }
  expect(problems).toEqual([]);
  return codes;
}

/** What a Controller may answer: INVALID_ARGUMENT, RESOURCE_EXHAUSTED above the receive limit, UNIMPLEMENTED for an RPC it lacks. */
const CONTROLLER_REFUSALS = new Set([Code.InvalidArgument, Code.ResourceExhausted, Code.Unimplemented]);

describe("1 MiB strings in every field of every RPC, with a Probe on the same connection", () => {
  let dir: string;

  beforeAll(async () => {
    await lstat(DRIVER_ENTRY); // built by `npm test`'s pretest (npm run build)
    dir = await makeTestDir("oversized");
  });
  afterAll(async () => {
    await removeTestDir(dir);
  });

  it(
    "the local backend, all-in-one: every call is refused at once with a short status",
    async () => {
      const driver: DriverProcess = await startDriver(join(dir, "local.sock"), [
        "--backend",
        "local",
        "--data-dir",
        join(dir, "data"),
        "--kubelet-dir",
        join(dir, "kubelet"),
        "--node-id",
        "test-node",
        "--alpha-features",
        "all",
      ]);
      const clients = connectCsi(driver.endpoint);
      try {
        const cases = casesOf([Identity, Controller, Node, GroupController, SnapshotMetadata]);
        // The Controller checks every field's size before anything else: the answer is INVALID_ARGUMENT, or
        // RESOURCE_EXHAUSTED when the whole request exceeds the server's message limit.
        const codes = await expectAllRefused(clients, cases, (c) => (c.service === Controller ? CONTROLLER_REFUSALS : undefined));
        // Every case is above the 256 KiB receive limit: refused before any field is read.
        expect(Object.fromEntries(codes)).toEqual({ ResourceExhausted: cases.length });
        // The connection is still good for ordinary calls.
        expect((await clients.identity.probe({})).ready).toBe(true);
        expect((await clients.controller.listVolumes({})).entries).toEqual([]);
      } finally {
        clients.close();
        expect(await driver.stop()).toBe(0);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "the DigitalOcean controller against the API simulator: every Controller call is refused at once with a short status",
    async () => {
      const sim = await DoSimulator.start({ localDropletId: 2718, region: "lon1" });
      let driver: DriverProcess | undefined;
      let clients: CsiClients | undefined;
      try {
        driver = await startDriver(join(dir, "do.sock"), [
          "--token",
          "secret-token",
          "--region",
          "lon1",
          "--url",
          sim.url,
          "--metadata-url",
          "http://127.0.0.1:9/metadata/v1/",
          "--alpha-features",
          "all",
        ]);
        clients = connectCsi(driver.endpoint);
        const cases = casesOf([Controller]);
        await expectAllRefused(clients, cases, () => CONTROLLER_REFUSALS);
        // Refused before the API was asked anything about them.
        expect(sim.requests.filter((r) => r.route !== "GET /v2/account")).toEqual([]);
        expect((await clients.identity.probe({})).ready).toBe(true);
      } finally {
        clients?.close();
        if (driver) expect(await driver.stop()).toBe(0);
        await sim.stop();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
