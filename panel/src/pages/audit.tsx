/**
 * The audit log: the newest events (`GET /v1/events?last=`, filtered by resource and name on
 * the server, by actor here), newest first; new ones appear live from the event stream. A
 * `gap` (the stream missed pruned events) loads the list again.
 */
import { useEffect, useState } from 'preact/hooks';
import { EventResource, type Event } from '../../../src/api/schemas/event.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { Field } from '../app/field.tsx';
import { useLoad } from '../app/use-load.ts';
import { ResourceTable } from '../app/resource-table.tsx';

/** How many events the page keeps and shows. */
const SHOWN = 300;
const RESOURCES = EventResource.options;
type Resource = (typeof RESOURCES)[number];

/** Merges events by id, newest first, at most SHOWN. */
function merge(a: readonly Event[], b: readonly Event[]): Event[] {
  const byId = new Map<number, Event>();
  for (const e of [...a, ...b]) byId.set(e.id, e);
  return [...byId.values()].sort((x, y) => y.id - x.id).slice(0, SHOWN);
}

export function AuditPage(props: PageProps) {
  const { client } = props;
  const [resource, setResource] = useState<Resource | ''>('');
  const [name, setName] = useState('');
  const [actor, setActor] = useState('');
  // The name filter is a DNS label on the server: only a whole valid one is sent.
  const nameQ = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name.trim()) ? name.trim() : undefined;
  const filter = { ...(resource ? { resource } : {}), ...(nameQ ? { name: nameQ } : {}) };
  const loaded = useLoad(() => client.call('listEvents', { query: { last: SHOWN, ...filter } }), [client, resource, nameQ]);
  const [events, setEvents] = useState<Event[]>([]);
  // A new filter starts afresh; its first load merges with what arrived live meanwhile.
  useEffect(() => setEvents([]), [resource, nameQ]);
  useEffect(() => {
    const items = loaded.data?.items;
    if (items) setEvents((list) => merge(list, items));
  }, [loaded.data]);
  props.useEvents(filter, (m) => {
    if ('gap' in m) loaded.reload();
    else setEvents((list) => merge(list, [m.event]));
  });
  // Filtered here too: an event the previous filter's subscription delivered just before it
  // was replaced must not stay in the list.
  const shown = events.filter((e) => (!resource || e.resource === resource) && (!nameQ || e.name === nameQ) && (!actor.trim() || e.actor.includes(actor.trim())));
  return (
    <div class="page audit-page">
      <h1>Audit log</h1>
      <form class="filters row" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <Field label="Resource" name="resource">
          <select value={resource} onChange={(e) => setResource(e.currentTarget.value as Resource | '')}>
            <option value="">all</option>
            {RESOURCES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Name" name="name" hint="exactly this name">
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} autocomplete="off" />
        </Field>
        <Field label="Actor" name="actor" hint="part of the actor">
          <input value={actor} onInput={(e) => setActor(e.currentTarget.value)} autocomplete="off" />
        </Field>
      </form>
      <CliHint args={['events', '--follow', ...(resource ? ['--resource', resource] : []), ...(nameQ ? ['--name', nameQ] : [])]} />
      <ApiErrorNote error={loaded.error} />
      <ResourceTable
        label="Audit events"
        tableClass="events"
        rows={shown}
        rowKey={(e) => e.id}
        rowProps={(e) => ({ 'data-event': e.id, 'data-revision': e.revision })}
        columns={[
          { head: 'When', cell: (e) => <time dateTime={e.at}>{new Date(e.at).toLocaleString()}</time> },
          { head: 'Actor', cell: (e) => e.actor },
          { head: 'Action', cell: (e) => e.action },
          { head: 'Resource', cell: (e) => e.resource },
          { head: 'Name', cell: (e) => e.name },
          { head: 'Message', cell: (e) => e.message, class: () => 'message' },
        ]}
      />
      {loaded.data && shown.length === 0 ? <p>No events match.</p> : null}
    </div>
  );
}
