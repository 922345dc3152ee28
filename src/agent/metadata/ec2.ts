/**
 * The EC2-style subset of the metadata service, as EC2 serves it with `HttpTokens: optional`
 * (the default) or `required` (`vm create --metadata-tokens`, per VM):
 * - IMDSv1: a plain GET is answered, unless the VM's tokens are `required` (then 401).
 * - IMDSv2: `PUT /latest/api/token` issues a session token, bound to the VM that asked (a token
 *   that leaks from one VM is worthless to another); a GET that presents a token is answered
 *   only if it is valid (401 otherwise, in both modes, as EC2 does).
 * What a token proves: the client could send a PUT with a custom header, which a plain
 * GET-only request forgery (SSRF) cannot, and, through the hop limit below, that it runs on
 * the VM itself and not in a container behind the VM's own NAT. It guards only these paths:
 * the NoCloud files (nocloud.ts) answer plain GETs in every mode, since cloud-init's NoCloud
 * source sends no headers and Butter's guests boot from it; an SSRF in a guest can read them,
 * user-data included.
 *
 * Hop limit (EC2's `HttpPutResponseHopLimit` of 1): Node cannot set IP_TTL on a TCP socket, so
 * the network's gateway namespace does it (core/gateway-ns.ts): it recognises a token reply by
 * its first bytes (TOKEN_REPLY_PREFIX: the status line, then the TTL header, which is why that
 * header goes first) and sends every later packet of that connection with TTL 1. For the
 * reply to be the first data of its connection, a token PUT is answered only as the first
 * request on a connection, which then closes; every other EC2 reply closes its connection too,
 * so pooled clients (AWS SDKs) never send their next PUT on a used one.
 *
 * Besides `latest`, dated API versions (`/2009-04-04/meta-data/...`) are served as aliases:
 * cloud-init's Ec2 data source probes dated versions and never asks for `latest` data.
 */
import { randomBytes } from 'node:crypto';
import type { MetadataReply, VmMetadata } from './types.ts';

export const TOKEN_PATH = '/latest/api/token';
/** Header names as node:http presents them (lower case). */
export const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
export const MAX_TTL_SECONDS = 21_600;

/** `1..21600` written as plain decimal digits, else undefined (the caller answers 400). */
export function parseTtlSeconds(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^[0-9]{1,5}$/.test(value)) return undefined;
  const ttl = Number(value);
  return ttl >= 1 && ttl <= MAX_TTL_SECONDS ? ttl : undefined;
}

export interface TokenStoreOptions {
  now?: () => number;
  randomToken?: () => string;
  /** Live tokens kept per VM; the oldest goes first, so a VM flooding PUTs only hurts itself. */
  maxPerVm?: number;
  /** How often (at most) issuing a token also sweeps expired tokens of every VM. */
  sweepIntervalMs?: number;
}

/**
 * Issued tokens, kept per VM so that a lookup is naturally scoped to the asking VM.
 * Bounded: expired tokens are dropped when seen, when their VM issues another, and in a
 * sweep over all VMs at most every `sweepIntervalMs`; live tokens are capped per VM. The
 * store only grows when a token is issued, so sweeping there is enough.
 */
export class Ec2TokenStore {
  private readonly byVm = new Map<string, Map<string, number>>();
  private readonly now: () => number;
  private readonly randomToken: () => string;
  private readonly maxPerVm: number;
  private readonly sweepIntervalMs: number;
  private lastSweep: number;

  constructor(opts: TokenStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.randomToken = opts.randomToken ?? (() => randomBytes(32).toString('base64url'));
    this.maxPerVm = opts.maxPerVm ?? 64;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 60_000;
    this.lastSweep = this.now();
  }

  issue(vmId: string, ttlSeconds: number): string {
    const now = this.now();
    if (now - this.lastSweep >= this.sweepIntervalMs) this.sweep(now);
    let tokens = this.byVm.get(vmId);
    if (!tokens) this.byVm.set(vmId, (tokens = new Map()));
    else dropExpired(tokens, now);
    const token = this.randomToken();
    tokens.delete(token); // re-inserting moves it to the young end of the eviction order
    tokens.set(token, now + ttlSeconds * 1000);
    for (const oldest of tokens.keys()) {
      if (tokens.size <= this.maxPerVm) break;
      tokens.delete(oldest);
    }
    return token;
  }

  /** True if `token` was issued to `vmId` and has not expired. */
  verify(vmId: string, token: string | string[] | undefined): boolean {
    if (typeof token !== 'string' || token === '') return false;
    const tokens = this.byVm.get(vmId);
    const expiresAt = tokens?.get(token);
    if (tokens === undefined || expiresAt === undefined) return false;
    if (this.now() < expiresAt) return true;
    tokens.delete(token);
    if (tokens.size === 0) this.byVm.delete(vmId);
    return false;
  }

  /** Tokens currently held (live or not yet swept); for tests and diagnostics. */
  get size(): number {
    let n = 0;
    for (const tokens of this.byVm.values()) n += tokens.size;
    return n;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [vmId, tokens] of this.byVm) {
      dropExpired(tokens, now);
      if (tokens.size === 0) this.byVm.delete(vmId);
    }
  }
}

function dropExpired(tokens: Map<string, number>, now: number): void {
  for (const [token, expiresAt] of tokens) if (now >= expiresAt) tokens.delete(token);
}

/** What the EC2 routes need from a request; the path is already normalised by the server. */
export interface Ec2Request {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Whether it is the first request on its TCP connection (a token PUT must be). */
  firstOnConnection: boolean;
}

const VERSIONED = /^\/(latest|\d{4}-\d{2}-\d{2})(\/.*)?$/;

/** True for paths this module answers (everything under `/latest/` or a dated version). */
export function isEc2Path(path: string): boolean {
  return VERSIONED.test(path);
}

const text = (status: number, body: string, extra: Partial<MetadataReply> = {}): MetadataReply => ({
  status,
  body,
  ...extra,
});

/** Every EC2 reply closes its connection (see the top of this file). */
const CLOSE = { connection: 'close' } as const;

/** Answers one EC2-style request for `md`'s VM; undefined when the path is not an EC2 path. */
export function handleEc2(req: Ec2Request, md: VmMetadata, tokens: Ec2TokenStore): MetadataReply | undefined {
  const m = VERSIONED.exec(req.path);
  if (!m) return undefined;
  const reply = route(req, m[2] ?? '', md, tokens);
  return { ...reply, headers: { ...reply.headers, ...CLOSE } };
}

function route(req: Ec2Request, rest: string, md: VmMetadata, tokens: Ec2TokenStore): MetadataReply {
  if (req.path === TOKEN_PATH) {
    if (req.method !== 'PUT') return text(405, 'method not allowed\n', { headers: { allow: 'PUT' } });
    // Real IMDS refuses token PUTs that went through a proxy: a hint of SSRF, not an identity.
    if (req.headers['x-forwarded-for'] !== undefined) return text(403, 'forbidden\n');
    // Only then is the token reply the first data of its connection, where the gateway
    // namespace looks for TOKEN_REPLY_PREFIX; behind an earlier reply it would pass unseen.
    if (!req.firstOnConnection) return text(400, 'a token request must be the first request on a new connection; open a new connection\n');
    const ttl = parseTtlSeconds(req.headers[TTL_HEADER]);
    if (ttl === undefined) return text(400, `${TTL_HEADER} must be an integer 1..${MAX_TTL_SECONDS}\n`);
    // The TTL header first: with the status line it is TOKEN_REPLY_PREFIX.
    return text(200, tokens.issue(md.vmId, ttl), { headers: { [TTL_HEADER]: String(ttl) } });
  }

  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return text(405, 'method not allowed\n', { headers: { allow: 'GET, HEAD' } });
  }
  // A token, once presented, must be valid (as on EC2, even when tokens are optional); without
  // one only `required` refuses. Either way no data, and no hint which paths exist.
  const presented = req.headers[TOKEN_HEADER];
  // Tokenless reads only where the VM says `optional`: a missing mode (a control plane from
  // before the field) keeps the IMDSv2-only behaviour those VMs had.
  if (presented !== undefined ? !tokens.verify(md.vmId, presented) : md.metadataTokens !== 'optional') return text(401, 'unauthorized\n');

  if (rest === '/user-data') {
    // Like EC2, no user-data is a 404; cloud-init reads that as "empty".
    return md.userData === '' ? text(404, 'not found\n') : text(200, md.userData, { countsAsFetch: true });
  }
  if (rest === '/meta-data' || rest.startsWith('/meta-data/')) {
    const body = metaDataEntry(md, rest.slice('/meta-data'.length));
    return body === undefined ? text(404, 'not found\n') : text(200, body, { countsAsFetch: true });
  }
  return text(404, 'not found\n');
}

/**
 * The `meta-data/` tree. Directory listings end entries that are directories with '/', as
 * EC2 does and cloud-init's crawler expects; a directory answers with or without its slash.
 */
function metaDataEntry(md: VmMetadata, sub: string): string | undefined {
  const hasKeys = md.sshKeys.length > 0;
  switch (sub) {
    case '':
    case '/':
      return ['hostname', 'instance-id', 'local-hostname', 'local-ipv4', 'mac', ...(hasKeys ? ['public-keys/'] : [])].join(
        '\n',
      );
    case '/instance-id':
      return md.instanceId;
    case '/hostname':
    case '/local-hostname':
      return md.hostname;
    case '/local-ipv4':
      return md.localIpv4;
    case '/mac':
      return md.mac.toLowerCase();
    case '/public-keys':
    case '/public-keys/':
      return hasKeys ? md.sshKeys.map((_, i) => `${i}=key-${i}`).join('\n') : undefined;
  }
  const key = /^\/public-keys\/(0|[1-9][0-9]{0,3})(\/|\/openssh-key)?$/.exec(sub);
  const value = key ? md.sshKeys[Number(key[1])] : undefined;
  if (key === null || value === undefined) return undefined;
  return key[2] === '/openssh-key' ? `${value}\n` : 'openssh-key';
}
