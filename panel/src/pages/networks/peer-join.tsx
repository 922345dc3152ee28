/**
 * Join a VPN peer to a network. The key pair is made in this browser (WebCrypto X25519) and
 * only its public half is sent; or the user pastes the public key of a pair made elsewhere
 * (the configuration then has a placeholder for the private key). The wg-quick file and its QR
 * code are made here, from the answer and the private key, and shown once.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { VpnPeerJoined } from '../../../../src/api/schemas/vpn.ts';
import { renderClientConf } from '../../../../src/core/wireguard-config.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useAction } from '../use-action.ts';
import { Qr } from './qr.tsx';
import { makeWireguardKey } from './wg-key.ts';

interface Props {
  client: Client;
  network: string;
  onJoined(): void;
}

interface Joined {
  peer: VpnPeerJoined;
  conf: string;
  madeHere: boolean;
}

export function PeerJoin({ client, network, onJoined }: Props) {
  const [name, setName] = useState('');
  const [endpoint, setEndpoint] = useState('');
  const [publicKey, setPublicKey] = useState('');
  const [canMake, setCanMake] = useState<boolean | null>(null);
  const [mode, setMode] = useState<'browser' | 'paste'>('browser');
  const join = useAction<Joined>();

  // Whether this browser can make X25519 keys (not over plain HTTP to a remote host, not old browsers).
  useEffect(() => {
    void makeWireguardKey().then((k) => {
      setCanMake(k !== null);
      if (k === null) setMode('paste');
    });
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const done = await join.run(async () => {
      const key = mode === 'browser' ? await makeWireguardKey() : null;
      if (mode === 'browser' && !key) throw new Error('this browser cannot make an X25519 key: paste a public key instead');
      const peer = await client.call('joinNetwork', { params: { name: network }, body: { name: name.trim(), publicKey: key ? key.publicKey : publicKey.trim(), ...(endpoint.trim() ? { endpoint: endpoint.trim() } : {}) } });
      const conf = renderClientConf(peer.config, key?.privateKey, `Butter network ${network}, VPN peer ${peer.name} (gateway node ${peer.gateway})`);
      return { peer, conf, madeHere: key !== null };
    });
    if (done) onJoined();
  };
  const r = join.result;
  const download = useMemo(() => (r ? URL.createObjectURL(new Blob([r.conf], { type: 'text/plain' })) : undefined), [r?.conf]);
  useEffect(() => () => void (download && URL.revokeObjectURL(download)), [download]);

  return (
    <form class="peer-join" onSubmit={submit} aria-label={`Join a VPN peer to ${network}`}>
      <h3>Join a VPN peer</h3>
      <div class="row">
        <Field label="Peer name" name="name" error={join.error} hint="e.g. laptop">
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <Field label="Endpoint (optional)" name="endpoint" error={join.error} hint="host:port the peer sends to, if not the gateway node's own address">
          <input value={endpoint} onInput={(e) => setEndpoint(e.currentTarget.value)} autocomplete="off" />
        </Field>
      </div>
      <fieldset>
        <legend>Key pair</legend>
        <label>
          <input type="radio" name="key-mode" checked={mode === 'browser'} disabled={canMake === false} onChange={() => setMode('browser')} /> make it in this browser (the private key stays here)
        </label>
        <label>
          <input type="radio" name="key-mode" checked={mode === 'paste'} onChange={() => setMode('paste')} /> use my own: paste its public key
        </label>
        {canMake === false ? <p class="hint">This browser cannot make X25519 keys here; paste a public key (`wg genkey | wg pubkey`).</p> : null}
      </fieldset>
      {mode === 'paste' ? (
        <Field label="Public key" name="publicKey" error={join.error}>
          <input value={publicKey} onInput={(e) => setPublicKey(e.currentTarget.value)} required autocomplete="off" spellcheck={false} />
        </Field>
      ) : null}
      <button type="submit" class="primary" disabled={join.busy}>
        {join.busy ? 'Joining…' : 'Join peer'}
      </button>
      <ApiErrorNote error={join.error} fields={['name', 'endpoint', 'publicKey']} />
      <CliHint args={['network', 'join', network, '--peer', name.trim() || 'PEER', ...(mode === 'paste' ? ['--public-key', publicKey.trim() || 'KEY'] : []), ...(endpoint.trim() ? ['--endpoint', endpoint.trim()] : [])]} />
      {r ? (
        <div class="peer-config" role="status">
          <p>
            Peer <strong>{r.peer.name}</strong> joined at {r.peer.ip} through node {r.peer.gateway}.{' '}
            {r.madeHere ? 'Its private key was made in this browser and is in this configuration only: save it now, it is not shown again.' : 'Put your private key in place of the placeholder.'}
          </p>
          {r.peer.endpointSource === 'default-route' ? <p class="warning">Endpoint {r.peer.config.endpoint} is node {r.peer.gateway}'s address on its default route; give an endpoint if peers reach it elsewhere.</p> : null}
          <div class="config-and-qr">
            <pre data-testid="peer-conf" tabIndex={0} aria-label="wg-quick configuration">{r.conf}</pre>
            <Qr text={r.conf} label={`QR code of the WireGuard configuration of peer ${r.peer.name}`} />
          </div>
          <a href={download} download={`${network}-${r.peer.name}.conf`}>
            Download {network}-{r.peer.name}.conf
          </a>
        </div>
      ) : null}
    </form>
  );
}
