// The runtime's floor for the footprint rows: a minimal gRPC server on
// node:http2 with no library. It answers every unary call, whatever its path,
// with an empty message and grpc-status 0 once the request has ended (length-
// prefixed framing, trailers), on the same kind of unix socket as the driver.
// Plain JavaScript, so any Node binary runs it as it is.
//
//   node bench/workers/bare-grpc-server.mjs --endpoint unix:///path/to/csi.sock
import { unlinkSync } from "node:fs";
import { createServer } from "node:http2";

const at = process.argv.indexOf("--endpoint");
const endpoint = at >= 0 ? process.argv[at + 1] : undefined;
if (endpoint === undefined || !endpoint.startsWith("unix://")) {
  process.stderr.write("usage: bare-grpc-server.mjs --endpoint unix:///path/to/socket\n");
  process.exit(2);
}
const socketPath = endpoint.slice("unix://".length);
const EMPTY_MESSAGE = Buffer.alloc(5);

const server = createServer();
server.on("stream", (stream) => {
  stream.on("data", () => {});
  stream.on("end", () => {
    if (stream.destroyed) return;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(EMPTY_MESSAGE);
  });
  stream.on("error", () => {});
});
try {
  unlinkSync(socketPath);
} catch {}
server.listen(socketPath);
process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
