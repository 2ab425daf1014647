import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status as GrpcStatus,
  type ServerInterceptor,
} from "@grpc/grpc-js";

/**
 * A grpc-js server interceptor that ends a call whose request has not fully
 * arrived `timeoutMs` after its headers, with RESOURCE_EXHAUSTED. grpc-js has
 * no such bound: without a grpc-timeout header, a client that announces a
 * message and stops sending it keeps the stream, and its handler waiting, for
 * the life of the connection. Once answered, the call drops whatever the
 * client still sends; grpc-js releases what the stream had buffered when the
 * client ends or resets the stream (Go clients reset it on the status), at
 * most MAX_CONCURRENT_STREAMS × MAX_RECEIVE_MESSAGE_BYTES per connection.
 */
export function unfinishedRequestTimeout(timeoutMs: number): ServerInterceptor {
  return (_method, next) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    const responder = new ResponderBuilder()
      .withStart((start) => {
        timer = setTimeout(() => {
          timer = undefined;
          call.sendStatus({
            code: GrpcStatus.RESOURCE_EXHAUSTED,
            details: `the request did not arrive completely within ${timeoutMs} ms; send each request whole`,
          });
        }, timeoutMs);
        timer.unref();
        start(
          new ServerListenerBuilder()
            .withOnReceiveHalfClose((halfClose) => {
              stop();
              halfClose();
            })
            .withOnCancel(stop)
            .build(),
        );
      })
      .withSendStatus((status, send) => {
        stop();
        send(status);
      })
      .build();
    const call = new ServerInterceptingCall(next, responder);
    return call;
  };
}
