import { describe, expect, it } from "vitest";
import { Code, CsiError } from "../../src/csi/errors.js";
import { Readiness } from "../../src/driver/readiness.js";

const signal = new AbortController().signal;

describe("Readiness", () => {
  it("is ready only when every check passes, and not ready while one is initializing", async () => {
    const r = new Readiness();
    r.add({ name: "a", check: async () => "ready" });
    r.add({ name: "b", check: async () => "initializing" });
    expect(await r.ready(signal)).toBe(false);
  });

  it("reports a plain failure as FAILED_PRECONDITION naming the check, and keeps status errors", async () => {
    const plain = new Readiness();
    plain.add({ name: "node host tools", check: async () => Promise.reject(new Error("missing mkfs.ext4")) });
    await expect(plain.ready(signal)).rejects.toMatchObject({
      code: Code.FailedPrecondition,
      rawMessage: "node host tools: missing mkfs.ext4",
    });
    const status = new Readiness();
    status.add({ name: "api", check: async () => Promise.reject(new CsiError(Code.Unauthenticated, "token rejected")) });
    await expect(status.ready(signal)).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("trusts a pass for a while, shares concurrent evaluations, and never caches a failure", async () => {
    let runs = 0;
    let healthy = true;
    const r = new Readiness();
    r.add({
      name: "flaky",
      check: async () => {
        runs++;
        await new Promise((res) => setTimeout(res, 20));
        if (!healthy) throw new Error("broken");
        return "ready";
      },
    });
    expect(await Promise.all([r.ready(signal), r.ready(signal), r.ready(signal)])).toEqual([true, true, true]);
    expect(runs).toBe(1);
    healthy = false;
    expect(await r.ready(signal)).toBe(true); // cached pass
    expect(runs).toBe(1);

    const failing = new Readiness();
    let failures = 0;
    failing.add({ name: "down", check: async () => Promise.reject(new Error(`failure ${++failures}`)) });
    await expect(failing.ready(signal)).rejects.toThrow(/failure 1/);
    await expect(failing.ready(signal)).rejects.toThrow(/failure 2/);
  });

  it("answers Probe from the process's own checks only, without running a dependency's check", async () => {
    let asked = 0;
    const r = new Readiness();
    r.add({ name: "host tools", check: async () => "ready" });
    r.add({
      name: "remote API",
      kind: "dependency",
      check: async () => {
        asked++;
        throw new Error("unreachable");
      },
    });
    expect(await r.ready(signal)).toBe(true);
    expect(asked).toBe(0);

    const broken = new Readiness();
    broken.add({ name: "remote API", kind: "dependency", check: async () => "ready" });
    broken.add({ name: "data dir", check: async () => Promise.reject(new Error("ENOENT")) });
    await expect(broken.ready(signal)).rejects.toMatchObject({ code: Code.FailedPrecondition, rawMessage: "data dir: ENOENT" });
  });

  it("reports every check with its kind and state, not ready while a dependency is down, with a bounded message", async () => {
    const r = new Readiness();
    r.add({ name: "host tools", check: async () => "ready" });
    r.add({ name: "starting", check: async () => "initializing" });
    r.add({ name: "token", kind: "dependency", check: async () => Promise.reject(new CsiError(Code.Unauthenticated, "token rejected")) });
    r.add({ name: "chatty", kind: "dependency", check: async () => Promise.reject(new Error("x".repeat(10_000))) });
    const report = await r.report(signal);
    expect(report.ready).toBe(false);
    expect(report.checks.slice(0, 3)).toEqual([
      { name: "host tools", kind: "process", state: "ready" },
      { name: "starting", kind: "process", state: "initializing" },
      { name: "token", kind: "dependency", state: "failed", message: "token rejected" },
    ]);
    expect(report.checks[3]?.state).toBe("failed");
    expect(report.checks[3]?.message?.length).toBeLessThanOrEqual(300);

    const healthy = new Readiness();
    healthy.add({ name: "host tools", check: async () => "ready" });
    healthy.add({ name: "remote API", kind: "dependency", check: async () => "ready" });
    expect(await healthy.report(signal)).toEqual({
      ready: true,
      checks: [
        { name: "host tools", kind: "process", state: "ready" },
        { name: "remote API", kind: "dependency", state: "ready" },
      ],
    });
  });
});
