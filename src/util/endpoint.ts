import { isAbsolute, resolve } from "node:path";

export type Endpoint =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/**
 * Parse a CSI endpoint: `unix:///abs/path.sock` (also `unix:/abs`, and the Go
 * driver's `unix://relative/path`, resolved against the working directory) or
 * `tcp://host:port`. Throws with the accepted forms in the message.
 */
export function parseEndpoint(value: string): Endpoint {
  const usage = "use unix:///absolute/path.sock or tcp://host:port";
  if (value.startsWith("unix:")) {
    let rest = value.slice("unix:".length);
    if (rest.startsWith("//")) rest = rest.slice(2); // unix:///abs -> /abs ; unix://rel -> rel
    if (rest === "" || rest.endsWith("/")) throw new Error(`endpoint ${JSON.stringify(value)} names no socket file; ${usage}`);
    return { kind: "unix", path: isAbsolute(rest) ? rest : resolve(rest) };
  }
  if (value.startsWith("tcp://")) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`endpoint ${JSON.stringify(value)} is not a valid URL; ${usage}`);
    }
    if (url.port === "" && !/:0$/.test(url.host)) throw new Error(`endpoint ${JSON.stringify(value)} has no port; ${usage}`);
    if (url.pathname !== "" && url.pathname !== "/") throw new Error(`endpoint ${JSON.stringify(value)} must not have a path; ${usage}`);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return { kind: "tcp", host: host === "" ? "0.0.0.0" : host, port: Number(url.port || "0") };
  }
  throw new Error(`unsupported endpoint ${JSON.stringify(value)}; ${usage}`);
}

export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.kind === "unix") return `unix://${endpoint.path}`;
  return `tcp://${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}
