/**
 * Networks: each private network's CIDR, its VMs and VPN peers; create and delete networks;
 * join a VPN peer (wg-quick file and QR code made in the browser) and revoke one. Live: a
 * network or VM event loads the list again.
 */
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import type { Network } from '../../../src/api/schemas/network.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { Confirm } from '../app/confirm.tsx';
import { Field } from '../app/field.tsx';
import { ResourceTable } from '../app/resource-table.tsx';
import { href } from '../app/router.ts';
import { useLoad } from '../app/use-load.ts';
import { useAction } from './use-action.ts';
import { PeerJoin } from './networks/peer-join.tsx';

export function NetworksPage(props: PageProps) {
  const { client } = props;
  const canChange = props.can('operator');
  const list = useLoad(() => client.call('listNetworks', {}), [client]);
  props.useEvents({ resource: 'network' }, () => list.reload());
  const selected = props.route.rest[0];
  const net = list.data?.items.find((n) => n.name === selected);
  return (
    <div class="page networks-page">
      <h1>Networks</h1>
      <ApiErrorNote error={list.error} />
      <ResourceTable
        label="Networks"
        rows={list.data?.items ?? []}
        rowKey={(n) => n.name}
        rowProps={(n) => ({ 'data-network': n.name, class: n.name === selected ? 'selected' : undefined })}
        columns={[
          {
            head: 'Name',
            cell: (n) => (
              <a href={href('networks', n.name)} aria-current={n.name === selected ? 'page' : undefined}>
                {n.name}
              </a>
            ),
          },
          { head: 'CIDR', cell: (n) => n.cidr },
          { head: 'Gateway', cell: (n) => n.gateway },
          { head: 'MTU', cell: (n) => n.mtu },
          { head: 'NAT', cell: (n) => (n.nat ? 'yes' : 'no') },
          { head: 'VMs', cell: (n) => n.vmCount },
          { head: 'VPN peers', cell: (n) => n.peerCount },
        ]}
      />
      <CliHint args={['network', 'list']} />
      {canChange ? <CreateNetwork {...props} onCreated={() => list.reload()} /> : null}
      {net ? <NetworkDetail key={net.name} {...props} network={net} canChange={canChange} onChanged={() => list.reload()} /> : selected && list.data ? <p class="error">No network {selected}.</p> : null}
    </div>
  );
}

function CreateNetwork({ client, onCreated }: PageProps & { onCreated(): void }) {
  const [name, setName] = useState('');
  const [cidr, setCidr] = useState('');
  const [nat, setNat] = useState(true);
  const create = useAction<Network>();
  const submit = async (e: Event) => {
    e.preventDefault();
    if (await create.run(() => client.call('createNetwork', { body: { name: name.trim(), ...(cidr.trim() ? { cidr: cidr.trim() } : {}), nat } }))) onCreated();
  };
  return (
    <form class="card" onSubmit={submit} aria-label="Create a network">
      <h2>Create a network</h2>
      <div class="row">
        <Field label="Name" name="name" error={create.error}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <Field label="CIDR (optional)" name="cidr" error={create.error} hint="default: the first free 10.x.0.0/16">
          <input value={cidr} onInput={(e) => setCidr(e.currentTarget.value)} autocomplete="off" />
        </Field>
        <label class="check">
          <input type="checkbox" checked={nat} onChange={(e) => setNat(e.currentTarget.checked)} /> NAT (VMs reach out through their host)
        </label>
      </div>
      <button type="submit" class="primary" disabled={create.busy}>
        Create network
      </button>
      <ApiErrorNote error={create.error} fields={['name', 'cidr']} />
      {create.result ? <p role="status">network {create.result.name} created: {create.result.cidr}, gateway {create.result.gateway}</p> : null}
      <CliHint args={['network', 'create', name.trim() || 'NAME', ...(cidr.trim() ? ['--cidr', cidr.trim()] : []), !nat && '--no-nat']} />
    </form>
  );
}

function NetworkDetail(props: PageProps & { network: Network; canChange: boolean; onChanged(): void }) {
  const { client, network: n, canChange, onChanged } = props;
  const peers = useLoad(() => client.call('listNetworkPeers', { params: { name: n.name } }), [n.name, n.peerCount]);
  const vms = useLoad(() => client.call('listVms', {}), [n.name, n.vmCount]);
  props.useEvents({ resource: 'vm' }, () => vms.reload());
  const [deleting, setDeleting] = useState(false);
  const revoke = useAction();
  const remove = useAction();
  const ofNet = (vms.data?.items ?? []).filter((v) => v.nics.some((c) => c.network === n.name));
  const doDelete = async () => {
    setDeleting(false);
    if (await remove.run(() => client.call('deleteNetwork', { params: { name: n.name } }))) {
      location.hash = href('networks');
      onChanged();
    }
  };
  return (
    <section class="card network-detail" aria-labelledby="network-title">
      <h2 id="network-title">Network {n.name}</h2>
      <dl class="facts">
        <dt>CIDR</dt>
        <dd>{n.cidr}</dd>
        <dt>gateway</dt>
        <dd>{n.gateway}</dd>
        <dt>VXLAN id</dt>
        <dd>{n.vni}</dd>
        <dt>VPN gateway</dt>
        <dd>{n.vpnGateway ?? '—'}</dd>
        {n.nodes.map((h) => (
          <Fragment key={h.node}>
            <dt>node {h.node}</dt>
            <dd class={`state ${h.state}`}>{h.error ? `${h.state}: ${h.error}` : h.state}</dd>
          </Fragment>
        ))}
      </dl>
      <CliHint args={['network', 'show', n.name]} />
      <h3>VMs</h3>
      {ofNet.length === 0 ? <p>No VMs.</p> : null}
      <ul class="vm-list">
        {ofNet.map((v) => (
          <li key={v.name}>
            <a href={href('vms', v.name)}>{v.name}</a> <span class="muted">{v.nics.find((c) => c.network === n.name)?.ip ?? 'no address yet'} · {v.state}</span>
          </li>
        ))}
      </ul>
      <h3>VPN peers</h3>
      <ApiErrorNote error={peers.error ?? revoke.error} />
      <ResourceTable
        label={`VPN peers of ${n.name}`}
        rows={peers.data?.items ?? []}
        rowKey={(p) => p.name}
        rowProps={(p) => ({ 'data-peer': p.name })}
        columns={[
          { head: 'Peer', cell: (p) => p.name },
          { head: 'Address', cell: (p) => p.ip },
          { head: 'Gateway', cell: (p) => p.gateway },
          { head: 'Endpoint', cell: (p) => p.endpoint },
          { head: 'Public key', cell: (p) => <code>{p.publicKey}</code> },
        ]}
        action={
          canChange
            ? {
                label: (p) => `Revoke ${p.name}`,
                danger: true,
                ask: (p) => ({
                  title: `Revoke peer ${p.name}?`,
                  action: `Revoke ${p.name}`,
                  body: (
                    <>
                      <p>Its tunnel stops at once.</p>
                      <CliHint args={['network', 'revoke', n.name, p.name]} />
                    </>
                  ),
                }),
                run: async (p) => {
                  if (await revoke.run(() => client.call('revokeNetworkPeer', { params: { name: n.name, peer: p.name } }))) {
                    peers.reload();
                    onChanged();
                  }
                },
              }
            : undefined
        }
      />
      <CliHint args={['network', 'peers', n.name]} />
      {canChange ? (
        <PeerJoin
          client={client}
          network={n.name}
          onJoined={() => {
            peers.reload();
            onChanged();
          }}
        />
      ) : null}
      {canChange ? (
        <div class="danger-zone">
          <button type="button" class="danger" onClick={() => setDeleting(true)}>
            Delete network {n.name}
          </button>
          <ApiErrorNote error={remove.error} />
          <CliHint args={['network', 'rm', n.name]} />
        </div>
      ) : null}
      {deleting ? (
        <Confirm title={`Delete network ${n.name}?`} action={`Delete ${n.name}`} danger onConfirm={() => void doDelete()} onCancel={() => setDeleting(false)}>
          <p>Refused while VMs or VPN peers are attached.</p>
          <CliHint args={['network', 'rm', n.name]} />
        </Confirm>
      ) : null}
    </section>
  );
}
