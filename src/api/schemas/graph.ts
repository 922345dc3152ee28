/**
 * `GET /v1/graph`: who may reach whom, as a graph (core/graph/model.ts builds it). JSON by
 * default; `format=dot` answers Graphviz DOT text, `format=svg` the picture `dot -Tsvg` draws.
 */
import { z } from 'zod';
import { Name } from './common.ts';

export const GRAPH_FORMATS = ['json', 'dot', 'svg'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** The media type each text format is answered with (json: the Graph schema). */
export const GRAPH_MEDIA_TYPES = { dot: 'text/vnd.graphviz', svg: 'image/svg+xml' } as const;

export const GraphQuery = z
  .object({
    network: Name.optional().describe('Only this network: its cluster, services and paths, and the CIDRs they admit'),
    format: z.enum(GRAPH_FORMATS).default('json').describe('`json` (the Graph schema), `dot` (Graphviz DOT text) or `svg` (drawn by Graphviz on the control plane)'),
  })
  .strict();

const Ports = z.tuple([z.number().int(), z.number().int()]);

export const GraphNode = z
  .object({
    id: z.string().describe('`service:NAME`, `internet` or `cidr:A.B.C.D/N`'),
    kind: z.enum(['service', 'internet', 'cidr']),
    label: z.string(),
    network: Name.nullable().describe("A service's network; null for the internet and CIDRs, which are outside every network"),
    cidr: z.string().nullable(),
    instances: z
      .object({ running: z.number().int(), total: z.number().int(), suspended: z.number().int().optional().describe('asleep for idleness (scale to zero; a connection wakes them); absent: none') })
      .nullable()
      .describe("A service's instances running and in all; null for a CIDR and for a service a path names that is not there"),
  })
  .meta({ id: 'GraphNode' });

export const GraphEdge = z
  .object({
    from: z.string(),
    to: z.string(),
    label: z.string().describe('`tcp:80`, `udp:53`, `tcp:8000-8100`'),
    network: Name,
    proto: z.enum(['tcp', 'udp']),
    ports: Ports,
  })
  .meta({ id: 'GraphEdge' });

export const GraphCluster = z
  .object({ network: Name, cidr: z.string(), label: z.string(), nodes: z.array(z.string()).describe('The service nodes inside') })
  .meta({ id: 'GraphCluster' });

export const Graph = z
  .object({
    clusters: z.array(GraphCluster).describe('One per network'),
    nodes: z.array(GraphNode),
    edges: z.array(GraphEdge).describe('One per path'),
    revision: z.number().int().describe('The store revision this graph was read at'),
  })
  .meta({ id: 'Graph' });
export type Graph = z.infer<typeof Graph>;
