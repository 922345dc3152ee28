/**
 * `path verify` on the wire (issue 14): the report an admin gets, the probe batches a node is
 * handed in its desired-state watch, and the results it sends back. The probes are packets
 * only (addresses, a MAC, a port): a node learns nothing of services or paths from them.
 */
import { z } from 'zod';
import { Name } from './common.ts';

const Ipv4 = z.string().regex(/^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/, 'must be an IPv4 address');
const Proto = z.enum(['tcp', 'udp']);
export const VerifyJobId = z.string().regex(/^[0-9a-f]{16}$/, 'must be a verify job id (16 hex digits)');
const ProbeId = z.string().regex(/^p\d{1,7}$/, 'must be a probe id (p and a number)');

export const WireProbe = z
  .object({
    id: ProbeId,
    src: Ipv4,
    dst: Ipv4,
    /** The destination instance's MAC: sent to it without ARP. */
    dstMac: z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, 'must be a MAC address'),
    proto: Proto,
    port: z.number().int().min(1).max(65535),
  })
  .strict();

/** What one node sends for one network: every probe from its probe port on that network's bridge. */
export const ProbeBatch = z.object({ job: VerifyJobId, network: Name, probes: z.array(WireProbe) }).strict().meta({ id: 'ProbeBatch' });
export type ProbeBatch = z.infer<typeof ProbeBatch>;

/** A node's answer for one batch: per probe id, admitted by every table or not; or why it could not run it. */
export const ProbeResults = z
  .object({
    job: VerifyJobId,
    network: Name,
    admitted: z.record(ProbeId, z.boolean()).optional(),
    error: z.string().max(4000).optional(),
  })
  .strict()
  .meta({ id: 'ProbeResults' });
export type ProbeResults = z.infer<typeof ProbeResults>;

export const VerifyQuery = z
  .object({ timeout: z.coerce.number().int().min(1).max(600).optional().describe('Seconds to wait for the nodes (default 60)') })
  .strict();

export const PathVerifyReport = z
  .object({
    network: Name,
    /** No disagreement, and every node answered for every probe. */
    ok: z.boolean(),
    /** Probes whose node answered. */
    probed: z.number().int(),
    agreed: z.number().int(),
    disagreements: z.array(
      z.object({
        node: Name,
        from: Name,
        to: Name,
        src: z.string(),
        dst: z.string(),
        /** `PORT/PROTO`. */
        port: z.string(),
        expected: z.enum(['allowed', 'denied']),
        observed: z.enum(['admitted', 'dropped']),
        /** The path that allows it, or why none does. */
        because: z.string(),
      }),
    ),
    /** Nodes that did not answer in time or could not probe: their probes prove nothing. */
    unanswered: z.array(z.object({ node: Name, probes: z.number().int(), reason: z.string() })),
    /** Pairs not probed, and why (a service with no running instance). */
    skipped: z.array(z.object({ from: Name, to: Name, reason: z.string() })),
  })
  .meta({ id: 'PathVerifyReport' });
export type PathVerifyReport = z.infer<typeof PathVerifyReport>;
