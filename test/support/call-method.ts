import type { DescMethod, DescMethodServerStreaming, DescMethodUnary, Message } from "@bufbuild/protobuf";
import { ConnectError, type Transport } from "@connectrpc/connect";

/** How a call chosen at run time ended: OK, or the status it failed with, and how long it took. */
export interface CallOutcome {
  readonly error: ConnectError | undefined;
  readonly ms: number;
}

const isUnary = (method: DescMethod): method is DescMethodUnary => method.methodKind === "unary";
const isServerStreaming = (method: DescMethod): method is DescMethodServerStreaming => method.methodKind === "server_streaming";

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}

/**
 * Call any unary or server-streaming method by its descriptor (a server stream
 * is read to its end), with a deadline of `timeoutMs`.
 */
export async function callMethod(transport: Transport, method: DescMethod, request: Message, timeoutMs: number): Promise<CallOutcome> {
  const started = performance.now();
  try {
    if (isUnary(method)) {
      await transport.unary(method, undefined, timeoutMs, undefined, request);
    } else if (isServerStreaming(method)) {
      const response = await transport.stream(method, undefined, timeoutMs, undefined, once(request));
      for await (const _message of response.message) {
        // read the stream to its status
      }
    } else {
      throw new Error(`${method.name} is a ${method.methodKind} method, which CSI does not have`);
    }
  } catch (err) {
    return { error: ConnectError.from(err), ms: performance.now() - started };
  }
  return { error: undefined, ms: performance.now() - started };
}
