import { describe, expect, it } from "vitest";
import { Code, CsiError, formatMessage, InvalidArgument, MAX_MESSAGE_BYTES, messagePart, NotFound, toCsiError } from "../../src/errors.js";
import { echo, MAX_DETAIL_CHARS, MAX_ECHO_CHARS, quote } from "../../src/util/echo.js";

/** Bytes of grpc-message as the server sends it (percent-encoded). */
const wireBytes = (message: string) => encodeURI(message).length;

describe("echo", () => {
  it("shows a short printable value as it is", () => {
    expect(echo("pvc-0b7c é ü")).toBe("pvc-0b7c é ü");
    expect(echo("x".repeat(MAX_ECHO_CHARS))).toBe("x".repeat(MAX_ECHO_CHARS));
  });

  it("escapes control, format and separator characters and lone surrogates", () => {
    expect(echo("a\nb\rc\td")).toBe("a\\nb\\rc\\td");
    expect(echo("nul\u0000 del\u007f c1\u0085")).toBe("nul\\x00 del\\x7f c1\\x85");
    expect(echo("bidi\u202e zw\u200b ls\u2028")).toBe("bidi\\u202e zw\\u200b ls\\u2028");
    expect(echo("lone\ud800")).toBe("lone\\ud800");
    expect(echo("private\u{f0000}")).toBe("private\\u{f0000}");
  });

  it("cuts a long value to a prefix, an ellipsis and its size in bytes", () => {
    expect(echo("a".repeat(MAX_ECHO_CHARS + 1))).toBe(`${"a".repeat(MAX_ECHO_CHARS)}… (${MAX_ECHO_CHARS + 1} bytes)`);
    const huge = "é".repeat(512 * 1024);
    expect(echo(huge)).toBe(`${"é".repeat(MAX_ECHO_CHARS)}… (1048576 bytes)`);
    // Escapes count against the bound: 1 MiB of newlines shows 64 of them.
    expect(echo("\n".repeat(1024 * 1024))).toBe(`${"\\n".repeat(MAX_ECHO_CHARS / 2)}… (1048576 bytes)`);
  });

  it("quotes with quotes and backslashes escaped", () => {
    expect(quote("")).toBe('""');
    expect(quote('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(quote("z".repeat(200))).toBe(`"${"z".repeat(MAX_ECHO_CHARS)}"… (200 bytes)`);
  });
});

describe("formatMessage", () => {
  it("echoes %s, quotes %q, prints %d and %%", () => {
    expect(formatMessage("volume %s of %q is %d%% full", "v\n1", "a b", 42)).toBe('volume v\\n1 of "a b" is 42% full');
    expect(formatMessage("size %d", 10n)).toBe("size 10");
  });

  it("bounds every argument, and lists", () => {
    const text = formatMessage("ids %s and %s", "x".repeat(100_000), "y".repeat(100_000));
    expect(text).toBe(`ids ${"x".repeat(MAX_ECHO_CHARS)}… (100000 bytes) and ${"y".repeat(MAX_ECHO_CHARS)}… (100000 bytes)`);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    expect(formatMessage("unknown keys %q", keys)).toBe(
      `unknown keys ${keys
        .slice(0, 8)
        .map((k) => `"${k}"`)
        .join(", ")} and 12 more`,
    );
  });

  it("inserts a message part as it is, and extra arguments bounded", () => {
    const reason = messagePart("fs_type %q is not supported", "z".repeat(300));
    const text = formatMessage("volume_capabilities[0]: %s", reason);
    expect(text).toBe(`volume_capabilities[0]: fs_type "${"z".repeat(MAX_ECHO_CHARS)}"… (300 bytes) is not supported`);
    expect(formatMessage("no placeholders", "a\u0000")).toBe("no placeholders a\\x00");
    expect(formatMessage("%s and %s", "one")).toBe("one and %s");
  });

  it("treats the argument, not the template, as input", () => {
    expect(formatMessage("%s", "%s %d %%")).toBe("%s %d %%");
  });
});

describe("CsiError", () => {
  it("keeps a message within the limit as it is", () => {
    const message = "volume_id is required: give the volume_id that CreateVolume returned";
    expect(new CsiError(Code.InvalidArgument, message).rawMessage).toBe(message);
  });

  it.each([
    ["ASCII", "a"],
    ["spaces, which percent-encode", " "],
    ["é, which percent-encodes to six bytes", "é"],
    ["newlines, which are escaped", "\n"],
  ])("caps a message of 1 MiB of %s at %d bytes on the wire", (_what, unit) => {
    const input = unit.repeat(1024 * 1024);
    const err = new CsiError(Code.Internal, `backend said: ${input}`);
    expect(wireBytes(err.rawMessage)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(wireBytes(err.rawMessage)).toBeGreaterThan(MAX_MESSAGE_BYTES - 40);
    expect(err.rawMessage).toMatch(/^backend said: /);
    expect(err.rawMessage).toMatch(new RegExp(` … \\(message cut from ${Buffer.byteLength(`backend said: ${input}`)} bytes\\)$`));
    expect(err.rawMessage).not.toMatch(/[\n\r]/);
    expect(err.message).toBe(`[INTERNAL] ${err.rawMessage}`);
  });

  it("bounds messages of every factory and of anything turned into a status", () => {
    const id = "\u0000".repeat(1024 * 1024);
    expect(wireBytes(NotFound("volume %s does not exist", id).rawMessage)).toBeLessThan(700);
    expect(wireBytes(InvalidArgument(`a message built by hand: ${id}`).rawMessage)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    const internal = toCsiError(new Error(`mkfs failed:\n${"x".repeat(1024 * 1024)}`));
    expect(internal.code).toBe(Code.Internal);
    expect(wireBytes(internal.rawMessage)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(internal.rawMessage).toMatch(/^mkfs failed:\\nxxx/);
  });

  it("bounds a second time without change", () => {
    const once = new CsiError(Code.Aborted, `token ${"é\t".repeat(10_000)}`).rawMessage;
    expect(new CsiError(Code.Aborted, once).rawMessage).toBe(once);
  });
});

describe("caught errors", () => {
  it("show an error's message, this process's own diagnosis, up to a longer bound", () => {
    const diagnosis = `mkfs.xfs is missing: install xfsprogs (${"x".repeat(300)})`;
    expect(formatMessage("node host tools: %s", new Error(diagnosis))).toBe(`node host tools: ${diagnosis}`);
    const long = new Error(`e\u0000${"y".repeat(MAX_DETAIL_CHARS)}`);
    expect(formatMessage("%s", long)).toBe(`e\\x00${"y".repeat(MAX_DETAIL_CHARS - 5)}… (${MAX_DETAIL_CHARS + 2} bytes)`);
  });
});
