import { describe, expect, it } from "vitest";
import { BoundedOutput, CommandError, OUTPUT_HEAD_BYTES, OUTPUT_TAIL_BYTES, run } from "../../src/util/exec.js";

const CAP = OUTPUT_HEAD_BYTES + OUTPUT_TAIL_BYTES;

describe("run: collected output", () => {
  it("returns output that fits the cap byte for byte, however the child writes it", async () => {
    // Just under the cap, written in many small pieces with varied content (as blkid or dumpe2fs would).
    const script = `i=0; while [ $i -lt ${Math.floor(CAP / 64) - 1} ]; do printf '%063d\\n' $i; i=$((i+1)); done`;
    const { stdout } = await run("sh", ["-c", script]);
    const lines = stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(Math.floor(CAP / 64) - 1);
    expect(lines.every((l, i) => l === String(i).padStart(63, "0"))).toBe(true);
    expect(stdout).not.toContain("omitted");
  });

  it("keeps the head and the tail of a flood, with a marker counting what was left out", async () => {
    const total = 8 * 1024 * 1024;
    const { stdout } = await run("sh", ["-c", `printf START; head -c ${total} /dev/zero | tr '\\0' x; printf END`]);
    expect(stdout.length).toBeLessThan(CAP + 100);
    expect(stdout.startsWith("STARTxxx")).toBe(true);
    expect(stdout.endsWith("xxxEND")).toBe(true);
    const omitted = total + "STARTEND".length - CAP;
    expect(stdout).toContain(`\n[... ${omitted} bytes of output omitted ...]\n`);
  });

  it("bounds stderr and the error message of a failing command that writes without end", async () => {
    const err = (await run("sh", ["-c", "head -c 4000000 /dev/zero | tr '\\0' e >&2; echo 'the real reason' >&2; exit 3"]).catch(
      (e: unknown) => e,
    )) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.exitCode).toBe(3);
    expect(err.stderr.length).toBeLessThan(CAP + 100);
    expect(err.stderr.trimEnd().endsWith("the real reason")).toBe(true);
    expect(err.message.length).toBeLessThan(1200);
    expect(err.message).toMatch(/exit status 3: .*the real reason$/);
  });
});

describe("BoundedOutput", () => {
  it("keeps exactly the first and last bytes across chunk boundaries", () => {
    const out = new BoundedOutput(4, 5);
    for (const piece of ["ab", "cdef", "ghij", "k", "lmnopq", "rs"]) out.push(Buffer.from(piece));
    expect(out.text()).toBe("abcd\n[... 10 bytes of output omitted ...]\nopqrs");
    const small = new BoundedOutput(4, 5);
    for (const piece of ["ab", "cdefg", "hi"]) small.push(Buffer.from(piece));
    expect(small.text()).toBe("abcdefghi");
  });
});
