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
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Networks">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">CIDR</th>
              <th scope="col">Gateway</th>
              <th scope="col">MTU</th>
              <th scope="col">NAT</th>
              <th scope="col">VMs</th>
              <th scope="col">VPN peers</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((n) => (
              <tr key={n.name} data-network={n.name} class={n.name === selected ? 'selected' : undefined}>
                <td>
                  <a href={href('networks', n.name)} aria-current={n.name === selected ? 'page' : undefined}>
                    {n.name}
                  </a>
                </td>
                <td>{n.cidr}</td>
                <td>{n.gateway}</td>
                <td>{n.mtu}</td>
                <td>{n.nat ? 'yes' : 'no'}</td>
                <td>{n.vmCount}</td>
                <td>{n.peerCount}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
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
  const [revoking, setRevoking] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);
  const revoke = useAction();
  const remove = useAction();
  const ofNet = (vms.data?.items ?? []).filter((v) => v.nics.some((c) => c.network === n.name));
  const doRevoke = async () => {
    const peer = revoking!;
    setRevoking(null);
    if (await revoke.run(() => client.call('revokeNetworkPeer', { params: { name: n.name, peer } }))) {
      peers.reload();
      onChanged();
    }
  };
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
      <div class="table-wrap" tabIndex={0} role="region" aria-label={`VPN peers of ${n.name}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Peer</th>
              <th scope="col">Address</th>
              <th scope="col">Gateway</th>
              <th scope="col">Endpoint</th>
              <th scope="col">Public key</th>
              {canChange ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {(peers.data?.items ?? []).map((p) => (
              <tr key={p.name} data-peer={p.name}>
                <td>{p.name}</td>
                <td>{p.ip}</td>
                <td>{p.gateway}</td>
                <td>{p.endpoint}</td>
                <td>
                  <code>{p.publicKey}</code>
                </td>
                {canChange ? (
                  <td>
                    <button type="button" class="danger small" onClick={() => setRevoking(p.name)}>
                      Revoke {p.name}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
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
      {revoking ? (
        <Confirm title={`Revoke peer ${revoking}?`} action={`Revoke ${revoking}`} danger onConfirm={() => void doRevoke()} onCancel={() => setRevoking(null)}>
          <p>Its tunnel stops at once.</p>
          <CliHint args={['network', 'revoke', n.name, revoking]} />
        </Confirm>
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
