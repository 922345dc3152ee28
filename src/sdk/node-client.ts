/**
 * The SDK's Client for Node (the CLI, the agent, `butter/sdk`): the browser-safe Client of
 * client.ts plus what only Node can do: verify HTTPS against the control plane's own CA alone
 * (`ca`, over node:tls and HTTP/2, tls.ts). The web panel never imports this file.
 */
import { Client as BaseClient, type ClientOptions as BaseOptions } from './client.ts';
import { trustingFetch } from './tls.ts';

export { ButterError, type BlobBody, type FetchLike } from './client.ts';

export interface ClientOptions extends BaseOptions {
  /** PEM of the control plane's CA: HTTPS is then verified against it alone. */
  ca?: string;
}

export class Client extends BaseClient {
  constructor(opts: ClientOptions) {
    const { ca, ...rest } = opts;
    super(ca ? { ...rest, fetch: trustingFetch(ca) } : rest);
  }
}
