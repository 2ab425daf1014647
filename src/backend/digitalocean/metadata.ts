/** What the droplet metadata service tells about the machine the driver runs on. */
export interface DropletIdentity {
  readonly dropletId: string;
  readonly region: string;
}

export class MetadataError extends Error {
  override readonly name = "MetadataError";
}

const TIMEOUT_MS = 2_000;

/**
 * The droplet metadata service (plain-text GETs on `<base>id` and
 * `<base>region`), with a short timeout: off a droplet the link-local address
 * does not answer, and the driver should say so at once, with the fix.
 */
export class MetadataClient {
  constructor(
    /** e.g. http://169.254.169.254/metadata/v1/ (ends in "/"). */
    readonly baseUrl: string,
    readonly timeoutMs = TIMEOUT_MS,
  ) {}

  async dropletId(signal?: AbortSignal): Promise<string> {
    const value = await this.#get("id", signal);
    if (!/^\d+$/.test(value))
      throw new MetadataError(`the droplet metadata service at ${this.baseUrl} answered an invalid droplet id ${JSON.stringify(value)}`);
    return value;
  }

  async region(signal?: AbortSignal): Promise<string> {
    const value = await this.#get("region", signal);
    if (!/^[a-z0-9-]+$/.test(value))
      throw new MetadataError(`the droplet metadata service at ${this.baseUrl} answered an invalid region ${JSON.stringify(value)}`);
    return value;
  }

  async identity(signal?: AbortSignal): Promise<DropletIdentity> {
    const [dropletId, region] = await Promise.all([this.dropletId(signal), this.region(signal)]);
    return { dropletId, region };
  }

  async #get(key: string, signal?: AbortSignal): Promise<string> {
    const url = new URL(key, this.baseUrl);
    const signals = [AbortSignal.timeout(this.timeoutMs), ...(signal ? [signal] : [])];
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.any(signals) });
    } catch (err) {
      const detail = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${this.timeoutMs} ms` : describe(err);
      throw new MetadataError(
        `cannot read the droplet ${key} from the metadata service at ${url.href} (${detail}); is this a DigitalOcean droplet? ` +
          "outside a droplet only the controller can run, with --token and --region",
      );
    }
    const text = (await res.text()).trim();
    if (!res.ok) throw new MetadataError(`the droplet metadata service at ${url.href} answered ${res.status}: ${text.slice(0, 200)}`);
    return text;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause: unknown = err.cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
