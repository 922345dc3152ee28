/**
 * `GET /v1/graph`: reads networks, services with their instance counts, and paths from the
 * store in one go (better-sqlite3 is synchronous: no write lands between the reads), builds the
 * graph (core/graph/model.ts) and answers it as JSON, DOT text or SVG (graph-renderer.ts).
 */
import { ApiError } from '../api/errors.ts';
import { GRAPH_MEDIA_TYPES, type Graph, type GraphFormat } from '../api/schemas/graph.ts';
import { buildGraph, type GraphNetworkInput, type GraphServiceInput } from '../core/graph/model.ts';
import { renderDot } from '../core/graph/dot.ts';
import type { Path } from '../core/paths/model.ts';
import type { SvgRenderer } from './graph-renderer.ts';
import type { Store } from './store/store.ts';

/** Every path the control plane holds (the paths store's list). */
export type PathList = () => readonly Path[];

export type GraphAnswer = { format: 'json'; graph: Graph } | { format: 'dot' | 'svg'; mediaType: string; text: string };

export class Graphs {
  constructor(
    private readonly store: Store,
    private readonly paths: PathList,
    private readonly renderer: SvgRenderer,
  ) {}

  /** The graph as the store has it now; `network` must name one (404 otherwise). */
  model(network?: string): Graph {
    const db = this.store.db;
    if (network !== undefined && !db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(network)) throw new ApiError('not_found', `no network ${network}`, 'network');
    const networks = db.prepare(`SELECT name, cidr FROM networks`).all() as GraphNetworkInput[];
    // Every instance `service show` lists (those being deleted too), and how many run.
    const services = db
      .prepare(`SELECT s.name AS name, s.network AS network, COUNT(v.id) AS total, COALESCE(SUM(v.state = 'running'), 0) AS running, COALESCE(SUM(v.state = 'suspended' AND v.power = 'running'), 0) AS suspended FROM services s LEFT JOIN vms v ON v.service = s.name GROUP BY s.name`)
      .all() as GraphServiceInput[];
    const revision = this.store.revision();
    return { ...buildGraph({ networks, services, paths: this.paths() }, network), revision };
  }

  async answer(format: GraphFormat, network?: string): Promise<GraphAnswer> {
    const graph = this.model(network);
    if (format === 'json') return { format, graph };
    const dot = renderDot(graph);
    if (format === 'dot') return { format, mediaType: GRAPH_MEDIA_TYPES.dot, text: dot };
    return { format, mediaType: GRAPH_MEDIA_TYPES.svg, text: await this.renderer.svg(dot) };
  }
}
