import { connect as netConnect } from "node:net";
import { performance } from "node:perf_hooks";
import type { DescMethod, DescMethodUnary, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { allowedCodes } from "./spec-codes.js";

/** A gRPC transport to a unix socket that calls any method by its descriptor. */
export function unixTransport(socketPath: string): { transport: Transport; close(): void } {
  const sessionManager = new Http2SessionManager("http://localhost", {}, { createConnection: () => netConnect(socketPath) });
  return { transport: createGrpcTransport({ baseUrl: "http://localhost", sessionManager }), close: () => sessionManager.abort() };
}

const isUnary = (method: DescMethod): method is DescMethodUnary => method.methodKind === "unary";

export const describeRequest = (request: Message): string =>
  JSON.stringify(request, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v)).slice(0, 400);

/**
 * Sends fuzzed requests and judges each answer: a call that takes `boundMs`
 * is a hang, a transport failure is a crash, and an error code the spec does
 * not allow for the method fails the property. Keeps a tally of the answers.
 */
export class FuzzCaller {
  /** Answers by method and code name ("OK" for success). */
  readonly outcomes = new Map<string, Map<string, number>>();

  constructor(
    private readonly transport: Transport,
    private readonly boundMs: number,
    private readonly onSuccess: (request: Message) => void = () => undefined,
  ) {}

  #count(method: string, code: string): void {
    const byCode = this.outcomes.get(method) ?? new Map<string, number>();
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    this.outcomes.set(method, byCode);
  }

  async call(method: DescMethod, request: Message): Promise<void> {
    if (!isUnary(method)) throw new Error(`${method.name} is not unary`);
    const started = performance.now();
    try {
      await this.transport.unary(method, undefined, this.boundMs, undefined, request);
      this.onSuccess(request);
      this.#count(method.name, "OK");
    } catch (err) {
      const elapsed = performance.now() - started;
      if (elapsed >= this.boundMs - 100)
        throw new Error(`${method.name} did not answer within ${this.boundMs} ms: ${describeRequest(request)}`);
      if (!(err instanceof ConnectError)) throw err;
      this.#count(method.name, Code[err.code]);
      if (!allowedCodes(method).has(err.code))
        throw new Error(`${method.name} answered ${Code[err.code]} (${err.rawMessage.slice(0, 200)}) to ${describeRequest(request)}`);
    }
  }

  /** Every answer seen, by code name. */
  codesSeen(): Set<string> {
    return new Set([...this.outcomes.values()].flatMap((byCode) => [...byCode.keys()]));
  }

  /** One line per method: "CreateVolume: OK 3, InvalidArgument 9". */
  summary(): string {
    return [...this.outcomes].map(([method, byCode]) => `${method}: ${[...byCode].map(([c, n]) => `${c} ${n}`).join(", ")}`).join("\n");
  }
}
