import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import { Controller, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { callMethod } from "../support/call-method.js";
import { startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// A call answered before its request was sent whole (here: above the receive limit) must not keep its stream
// open: the client (connect-node) never ends such a request, and 32 open streams wedged the connection.
// Runs the built program (npm run build).

const CALLS = 200;

it(`${CALLS} oversized requests on one connection, then a Probe that answers at once`, async () => {
  const dir = await makeTestDir("early-reset");
  const driver = await startDriver(join(dir, "s.sock"), [
    "--backend",
    "local",
    "--data-dir",
    join(dir, "data"),
    "--kubelet-dir",
    join(dir, "kubelet"),
    "--node-id",
    "n",
  ]);
  const clients = connectCsi(driver.endpoint);
  const probe = Identity.methods.find((m) => m.name === "Probe");
  const createVolume = Controller.methods.find((m) => m.name === "CreateVolume");
  if (probe === undefined || createVolume === undefined) throw new Error("generated services lack Probe or CreateVolume");
  try {
    const codes = new Map<string, number>();
    for (let i = 0; i < CALLS; i++) {
      const call = await callMethod(clients.transport, createVolume, create(createVolume.input, { name: "a".repeat(1024 * 1024) }), 5000);
      const name = call.error === undefined ? "OK" : Code[call.error.code];
      codes.set(name, (codes.get(name) ?? 0) + 1);
    }
    expect(Object.fromEntries(codes)).toEqual({ ResourceExhausted: CALLS });
    const probed = await callMethod(clients.transport, probe, create(probe.input), 5000);
    expect(probed.error).toBeUndefined();
    expect(probed.ms).toBeLessThan(1000);
  } finally {
    clients.close();
    await driver.stop();
    await removeTestDir(dir);
  }
}, 120_000);
