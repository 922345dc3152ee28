/**
 * Services and paths: the graph of who may reach whom (`GET /v1/graph`), the paths behind an
 * edge (click it), "may A reach B on port P?" (click two nodes), adding and removing paths,
 * and each service's instances, scale, update and rollback. Live: an audit event about a
 * service, a path or a VM loads the graph again.
 */
import { useState } from 'preact/hooks';
import type { Graph } from '../../../src/api/schemas/graph.ts';
import type { Path } from '../../../src/api/schemas/path.ts';
import type { Service } from '../../../src/api/schemas/service.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { href } from '../app/router.ts';
import { useLoad } from '../app/use-load.ts';
import { CheckForm } from './services/check-form.tsx';
import { EdgeDetail } from './services/edge-detail.tsx';
import { pathsOfEdge, type PlacedEdge, type PlacedNode } from './services/graph-layout.ts';
import { GraphView } from './services/graph-view.tsx';
import { PathForm } from './services/path-form.tsx';
import { ServiceDetail } from './services/service-detail.tsx';

interface State {
  graph: Graph;
  paths: Path[];
  services: Service[];
}

export function ServicesPage(props: PageProps) {
  const { client } = props;
  const canChange = props.can('operator');
  const state = useLoad<State>(async () => {
    const [graph, paths, services] = await Promise.all([client.call('getGraph', { query: {} }), client.call('listPaths', { query: {} }), client.call('listServices', { query: {} })]);
    return { graph: graph as Graph, paths: paths.items, services: services.items };
  }, [client]);
  const [version, setVersion] = useState(0);
  const changed = () => {
    setVersion((v) => v + 1);
    state.reload();
  };
  // Instances' states arrive as VM events; services and paths as their own.
  props.useEvents({ resource: 'service' }, changed);
  props.useEvents({ resource: 'path' }, changed);
  props.useEvents({ resource: 'vm' }, () => state.reload());

  const [edge, setEdge] = useState<Pick<PlacedEdge, 'key' | 'from' | 'to'> | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const selected = props.route.rest[0];
  const s = state.data;

  const onNode = (n: PlacedNode) => {
    setPicked((p) => (p.length === 1 && p[0] !== n.id ? [p[0]!, n.id] : [n.id]));
    if (n.node.kind === 'service') location.hash = href('services', n.id.replace(/^service:/, ''));
  };
  const onEdge = (e: PlacedEdge) => setEdge(edge?.key === e.key ? null : { key: e.key, from: e.from, to: e.to });
  const firstPort = (a: string, b: string): string | undefined => {
    const p = s ? pathsOfEdge({ from: a, to: b }, s.paths)[0] : undefined;
    return p ? `${p.ports[0]}${p.proto === 'udp' ? '/udp' : ''}` : undefined;
  };
  const service = s?.services.find((x) => x.name === selected);

  return (
    <div class="page services-page">
      <h1>Services and paths</h1>
      <ApiErrorNote error={state.error} />
      {s ? (
        <>
          <p class="hint">Click an arrow to see its paths; click two boxes (A, then B) to ask whether A may reach B.</p>
          <GraphView graph={s.graph} edge={edge?.key ?? null} picked={picked} onEdge={onEdge} onNode={onNode} />
          <CliHint args={['graph', '--format', 'svg', '-o', 'graph.svg']} />
          {edge ? <EdgeDetail client={client} paths={pathsOfEdge(edge, s.paths)} canChange={canChange} onClose={() => setEdge(null)} onRemoved={changed} /> : null}
          {picked.length === 2 ? <CheckForm key={picked.join('>')} client={client} from={picked[0]!} to={picked[1]!} port={firstPort(picked[0]!, picked[1]!)} onClose={() => setPicked([])} /> : null}
          {canChange ? <PathForm client={client} services={s.services.map((x) => x.name)} onAdded={changed} /> : null}
          <section class="card" aria-labelledby="services-list">
            <h2 id="services-list">Services</h2>
            {s.services.length === 0 ? <p>No services. Create one with the CLI from a blueprint.</p> : null}
            <ul class="service-list">
              {s.services.map((x) => (
                <li key={x.name}>
                  <a href={href('services', x.name)} aria-current={x.name === selected ? 'page' : undefined}>
                    {x.name}
                  </a>{' '}
                  <span class="muted">
                    {x.network} · {x.instances.filter((i) => i.state === 'running').length}/{x.count} running · revision {x.revision}
                    {x.rollout.state !== 'done' ? ` · ${x.rollout.state}` : ''}
                  </span>
                </li>
              ))}
            </ul>
            <CliHint args={['service', 'list']} />
          </section>
          {service ? <ServiceDetail key={service.name} client={client} service={service} canChange={canChange} version={version} onChanged={changed} /> : selected ? <p class="error">No service {selected}.</p> : null}
        </>
      ) : state.error ? null : (
        <p aria-busy="true">Loading…</p>
      )}
    </div>
  );
}
