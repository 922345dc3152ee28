import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { parse } from 'yaml';
import { TOKEN_REPLY_PREFIX } from '../../core/gateway-ns.ts';
import { Ec2TokenStore, parseTtlSeconds } from './ec2.ts';
import { renderMetaData, renderNetworkConfig } from './nocloud.ts';
import { createMetadataServer, normalisePath, sourceIpOf, type MetadataServer } from './server.ts';
import type { MetadataSource, VmMetadata } from './types.ts';
import { cannotRun } from '../../../test/requires.ts';
import { within } from '../../../test/within.ts';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example.com';
const KEY_B = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob@example.com';

const vmA: VmMetadata = {
  vmId: 'vm-a',
  instanceId: 'i-0a1b2c3d',
  hostname: 'web-1',
  localIpv4: '10.0.0.5',
  mac: '52:54:00:AB:CD:EF',
  userData: '#cloud-config\npackages: [nginx]\n',
  vendorData: '#cloud-config\ntimezone: UTC\n',
  sshKeys: [KEY_A, KEY_B],
  mtu: 1450,
  metadataTokens: 'optional',
};
const vmB: VmMetadata = {
  vmId: 'vm-b',
  instanceId: 'i-bbbb',
  hostname: 'no', // a YAML 1.1 boolean if left unquoted
  localIpv4: '10.0.0.6',
  mac: '52:54:00:12:34:56', // a YAML 1.1 base-60 integer if left unquoted
  userData: '',
  vendorData: '',
  sshKeys: [],
  metadataTokens: 'optional',
};
/** vmA with IMDSv2 enforced (`vm create --metadata-tokens required`). */
const vmRequired: VmMetadata = { ...vmA, metadataTokens: 'required' };

describe('NoCloud renderers', () => {
  test('meta-data golden', () => {
    assert.equal(
      renderMetaData(vmA),
      [
        'instance-id: "i-0a1b2c3d"',
        'local-hostname: "web-1"',
        'public-keys:',
        `  - "${KEY_A}"`,
        `  - "${KEY_B}"`,
        '',
      ].join('\n'),
    );
    assert.equal(renderMetaData(vmB), ['instance-id: "i-bbbb"', 'local-hostname: "no"', 'public-keys: []', ''].join('\n'));
  });

  test('network-config golden', () => {
    assert.equal(
      renderNetworkConfig(vmA),
      [
        'version: 2',
        'ethernets:',
        '  eth0:',
        '    match:',
        '      macaddress: "52:54:00:ab:cd:ef"',
        '    set-name: "eth0"',
        '    dhcp4: true',
        '    mtu: 1450',
        '',
      ].join('\n'),
    );
    assert.equal(
      renderNetworkConfig(vmB),
      [
        'version: 2',
        'ethernets:',
        '  eth0:',
        '    match:',
        '      macaddress: "52:54:00:12:34:56"',
        '    set-name: "eth0"',
        '    dhcp4: true',
        '',
      ].join('\n'),
    );
  });

  test('network-config golden with a second NIC: matched by MAC, named eth1', () => {
    assert.equal(
      renderNetworkConfig({ ...vmA, moreNics: [{ mac: '52:54:01:AA:00:01', mtu: 1390 }] }),
      [
        'version: 2',
        'ethernets:',
        '  eth0:',
        '    match:',
        '      macaddress: "52:54:00:ab:cd:ef"',
        '    set-name: "eth0"',
        '    dhcp4: true',
        '    mtu: 1450',
        '  eth1:',
        '    match:',
        '      macaddress: "52:54:01:aa:00:01"',
        '    set-name: "eth1"',
        '    dhcp4: true',
        '    mtu: 1390',
        '',
      ].join('\n'),
    );
  });

  test('values keep their type under a YAML 1.1 reader (what cloud-init uses)', () => {
    const md = parse(renderMetaData(vmB), { version: '1.1' }) as Record<string, unknown>;
    assert.equal(md['local-hostname'], 'no');
    const net = parse(renderNetworkConfig(vmB), { version: '1.1' }) as {
      ethernets: { eth0: { match: { macaddress: unknown } } };
    };
    assert.equal(net.ethernets.eth0.match.macaddress, '52:54:00:12:34:56');
  });

  test('a newline in a key cannot inject YAML', () => {
    const md = parse(renderMetaData({ ...vmA, sshKeys: ['ssh-ed25519 AAAA x\ninstance-id: evil'] })) as Record<
      string,
      unknown
    >;
    assert.equal(md['instance-id'], 'i-0a1b2c3d');
    assert.deepEqual(md['public-keys'], ['ssh-ed25519 AAAA x\ninstance-id: evil']);
  });
});

describe('helpers', () => {
  test('sourceIpOf strips only the IPv4-mapped prefix', () => {
    assert.equal(sourceIpOf('::ffff:10.0.0.5'), '10.0.0.5');
    assert.equal(sourceIpOf('::FFFF:127.0.0.1'), '127.0.0.1');
    assert.equal(sourceIpOf('10.0.0.5'), '10.0.0.5');
    assert.equal(sourceIpOf('fe80::1'), 'fe80::1');
    assert.equal(sourceIpOf('::ffff:fe80::1'), '::ffff:fe80::1');
    assert.equal(sourceIpOf(undefined), undefined);
  });

  test('normalisePath', () => {
    assert.equal(normalisePath('/meta-data'), '/meta-data');
    assert.equal(normalisePath('//meta-data'), '/meta-data');
    assert.equal(normalisePath('/meta-data?vm=other#x'), '/meta-data');
    assert.equal(normalisePath('/latest//meta-data/'), '/latest/meta-data/');
    assert.equal(normalisePath('http://169.254.169.254//user-data'), '/user-data');
    assert.equal(normalisePath('*'), undefined);
  });

  test('parseTtlSeconds', () => {
    assert.equal(parseTtlSeconds('1'), 1);
    assert.equal(parseTtlSeconds('21600'), 21600);
    for (const bad of [undefined, '', '0', '21601', '-1', '1.5', 'abc', ' 5', '1e3', '999999']) {
      assert.equal(parseTtlSeconds(bad), undefined, String(bad));
    }
  });

  test('token store is bounded per VM and sweeps expired tokens', () => {
    let now = 0;
    let n = 0;
    const store = new Ec2TokenStore({ now: () => now, randomToken: () => `t${n++}`, maxPerVm: 3, sweepIntervalMs: 1000 });
    for (let i = 0; i < 10; i++) store.issue('vm-a', 1);
    assert.equal(store.size, 3);
    assert.equal(store.verify('vm-a', 't0'), false, 'oldest evicted');
    assert.equal(store.verify('vm-a', 't9'), true);
    store.issue('vm-b', 100);
    now = 1000; // vm-a's tokens expire; the next issue sweeps every VM
    store.issue('vm-c', 1);
    assert.equal(store.size, 2);
    assert.equal(store.verify('vm-b', 't10'), true);
  });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; localAddress?: string; host?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.host ?? '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        localAddress: opts.localAddress,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Writes each chunk in turn on one TCP connection (the next once a reply arrived) and returns
 * every byte the server sent, and whether the server closed the connection (within 2 s).
 */
function exchange(port: number, chunks: string[]): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    let next = 0;
    let closed = false;
    const timer = setTimeout(() => socket.destroy(), 2000);
    const write = () => {
      if (next < chunks.length) socket.write(chunks[next++]!);
    };
    socket.setEncoding('latin1');
    socket.on('connect', write);
    socket.on('data', (d: string) => {
      raw += d;
      write();
    });
    socket.on('end', () => {
      closed = true;
      socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ raw, closed });
    });
  });
}

const TTL = 'X-aws-ec2-metadata-token-ttl-seconds';

describe('metadata server over HTTP', () => {
  let current: VmMetadata | undefined = vmA;
  let fetches: Array<[string, string]> = [];
  let lookups: string[] = [];
  let errors: unknown[] = [];
  let onFetchThrows = false;
  let now = 1_000_000;
  let tokenSeq = 0;
  let server: MetadataServer;
  let port: number;

  const source: MetadataSource = {
    lookup(ip) {
      lookups.push(ip);
      if (ip === '127.0.0.9') throw new Error('lookup exploded');
      return ip === '127.0.0.1' ? current : undefined;
    },
    onFetch(vmId, path) {
      fetches.push([vmId, path]);
      if (onFetchThrows) throw new Error('agent bug');
    },
  };

  before(async () => {
    server = createMetadataServer(source, {
      now: () => now,
      randomToken: () => `token-${tokenSeq++}`,
      onError: (err) => errors.push(err),
    });
    ({ port } = await server.listen('127.0.0.1', 0));
  });
  after(() => server.close());
  beforeEach(() => {
    current = vmA;
    fetches = [];
    lookups = [];
    errors = [];
    onFetchThrows = false;
  });

  const get = (path: string, headers?: Record<string, string>) => request(port, path, { headers });
  const token = async (ttl = '60') => {
    const r = await request(port, '/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
    });
    assert.equal(r.status, 200, r.body);
    return r.body;
  };
  const ec2 = (path: string, tok: string) => get(path, { 'X-aws-ec2-metadata-token': tok });

  test('NoCloud files', async () => {
    const md = await get('/meta-data');
    assert.equal(md.status, 200);
    assert.equal(md.body, renderMetaData(vmA));
    assert.match(md.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal((await get('//meta-data')).body, renderMetaData(vmA));
    assert.equal((await get('/meta-data?instance=vm-b')).body, renderMetaData(vmA));
    const ud = await get('/user-data');
    assert.equal(ud.status, 200);
    assert.equal(ud.body, vmA.userData);
    assert.match(ud.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal((await get('/vendor-data')).body, vmA.vendorData);
    assert.equal((await get('/network-config')).body, renderNetworkConfig(vmA));
    assert.deepEqual(fetches, [
      ['vm-a', '/meta-data'],
      ['vm-a', '/meta-data'],
      ['vm-a', '/meta-data'],
      ['vm-a', '/user-data'],
    ]);
  });

  test('empty user-data and vendor-data are served as empty files for NoCloud', async () => {
    current = vmB;
    const ud = await get('/user-data');
    assert.equal(ud.status, 200);
    assert.equal(ud.body, '');
    assert.equal((await get('/vendor-data')).status, 200);
  });

  test('HEAD has no body; other methods are 405', async () => {
    const head = await request(port, '/meta-data', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const post = await request(port, '/meta-data', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
  });

  test('unknown path is 404', async () => {
    for (const p of ['/', '/meta-data/', '/metadata', '/latest', '/latest/meta-data/nope', '/%2Fmeta-data']) {
      const r = p.startsWith('/latest') ? await ec2(p, await token()) : await get(p);
      assert.equal(r.status, 404, p);
    }
    assert.deepEqual(fetches, []);
  });

  test('unknown source is 403 whatever the path, and nothing is reported', async () => {
    for (const p of ['/meta-data', '/user-data', '/nope', '/latest/api/token']) {
      const r = await request(port, p, { localAddress: '127.0.0.2', method: p.endsWith('token') ? 'PUT' : 'GET' });
      assert.equal(r.status, 403, p);
      assert.match(r.body, /forbidden/);
      assert.ok(r.body.length < 100);
    }
    current = undefined; // a known address whose VM is gone
    assert.equal((await get('/meta-data')).status, 403);
    assert.deepEqual(fetches, []);
  });

  test('identity comes from the source address only, never from headers', async () => {
    const r = await get('/meta-data', { 'X-Forwarded-For': '127.0.0.2', 'X-Real-IP': '10.0.0.6', Host: '10.0.0.6' });
    assert.equal(r.status, 200);
    assert.deepEqual(lookups, ['127.0.0.1']);
  });

  test('EC2 token and meta-data tree', async () => {
    const t = await token('21600');
    const put = await request(port, '/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '1' },
    });
    assert.equal(put.headers['x-aws-ec2-metadata-token-ttl-seconds'], '1');
    const expect: Record<string, string> = {
      '/latest/meta-data/': 'hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\npublic-keys/',
      '/latest/meta-data': 'hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\npublic-keys/',
      '/latest/meta-data/instance-id': 'i-0a1b2c3d',
      '/latest/meta-data/local-hostname': 'web-1',
      '/latest/meta-data/hostname': 'web-1',
      '/latest/meta-data/local-ipv4': '10.0.0.5',
      '/latest/meta-data/mac': '52:54:00:ab:cd:ef',
      '/latest/meta-data/public-keys/': '0=key-0\n1=key-1',
      '/latest/meta-data/public-keys/0/': 'openssh-key',
      '/latest/meta-data/public-keys/0/openssh-key': `${KEY_A}\n`,
      '/latest/meta-data/public-keys/1/openssh-key': `${KEY_B}\n`,
      '/latest/user-data': vmA.userData,
      // cloud-init's Ec2 data source asks for dated API versions
      '/2021-03-23/meta-data/instance-id': 'i-0a1b2c3d',
      '/2009-04-04/user-data': vmA.userData,
    };
    for (const [path, body] of Object.entries(expect)) {
      const r = await ec2(path, t);
      assert.equal(r.status, 200, path);
      assert.equal(r.body, body, path);
    }
    assert.equal((await ec2('/latest/meta-data/public-keys/2/openssh-key', t)).status, 404);
    assert.equal(fetches.length, Object.keys(expect).length);
    assert.deepEqual(fetches[2], ['vm-a', '/latest/meta-data/instance-id']);
    assert.ok(fetches.every(([vm]) => vm === 'vm-a'));
  });

  test('EC2 without keys or user-data', async () => {
    current = vmB;
    const t = await token();
    assert.equal((await ec2('/latest/meta-data/', t)).body, 'hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac');
    assert.equal((await ec2('/latest/meta-data/public-keys/', t)).status, 404);
    assert.equal((await ec2('/latest/meta-data/public-keys/0/openssh-key', t)).status, 404);
    assert.equal((await ec2('/latest/user-data', t)).status, 404);
  });

  test('optional tokens (the default): tokenless GETs of dated paths are served, as cloud-init\'s Ec2 source sends them off AWS', async () => {
    const expect: Record<string, string> = {
      '/2009-04-04/meta-data/instance-id': 'i-0a1b2c3d',
      '/2021-03-23/meta-data/instance-id': 'i-0a1b2c3d',
      '/2009-04-04/meta-data/': 'hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac\npublic-keys/',
      '/2009-04-04/meta-data/public-keys/': '0=key-0\n1=key-1',
      '/2009-04-04/meta-data/public-keys/0/openssh-key': `${KEY_A}\n`,
      '/2009-04-04/user-data': vmA.userData,
      '/latest/meta-data/local-ipv4': '10.0.0.5',
    };
    for (const [path, body] of Object.entries(expect)) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.body, body, path);
    }
    assert.equal(fetches.length, Object.keys(expect).length);
  });

  test('optional tokens: a token that is presented must be valid (401), as on EC2', async () => {
    assert.equal((await ec2('/2009-04-04/meta-data/instance-id', 'made-up')).status, 401);
    assert.equal((await ec2('/latest/meta-data/instance-id', '')).status, 401);
    const t = await token('10');
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 200);
    now += 10_000; // expired
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 401);
    assert.equal((await get('/latest/meta-data/instance-id')).status, 200, 'without the header it is served again');
  });

  test('required tokens: EC2 GETs need a valid token (401), and report nothing without one; NoCloud still answers', async () => {
    current = vmRequired;
    assert.equal((await get('/2009-04-04/meta-data/instance-id')).status, 401);
    assert.equal((await get('/latest/meta-data/instance-id')).status, 401);
    assert.equal((await ec2('/latest/meta-data/instance-id', 'made-up')).status, 401);
    assert.equal((await ec2('/latest/meta-data/instance-id', '')).status, 401);
    assert.equal((await get('/2009-04-04/user-data')).status, 401);
    assert.equal((await get('/latest/no-such-thing')).status, 401);
    assert.deepEqual(fetches, []);
    assert.equal((await ec2('/2009-04-04/meta-data/instance-id', await token())).body, 'i-0a1b2c3d');
    // Tokens guard the EC2 paths only: cloud-init's NoCloud source sends no headers.
    assert.equal((await get('/user-data')).body, vmA.userData);
  });

  test('a VM whose mode is missing (a control plane from before the field) is served as required, not opened to tokenless reads', async () => {
    current = { ...vmA, metadataTokens: undefined } as unknown as VmMetadata;
    assert.equal((await get('/2009-04-04/meta-data/instance-id')).status, 401);
    assert.equal((await ec2('/2009-04-04/meta-data/instance-id', await token())).body, 'i-0a1b2c3d');
  });

  test('the token reply starts with a fixed prefix (the gateway namespace matches it) and closes its connection', async () => {
    const { raw, closed } = await exchange(port, [`PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n${TTL}: 60\r\n\r\n`]);
    assert.ok(closed, 'the server closed the connection');
    assert.ok(raw.startsWith(`HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\n`), JSON.stringify(raw.slice(0, 80)));
    assert.ok(raw.startsWith(TOKEN_REPLY_PREFIX));
    assert.match(raw, /\r\nconnection: close\r\n/i);
    assert.match(raw, /\r\n\r\ntoken-\d+$/, 'the token, and the connection ended after it');
  });

  test('Expect: 100-continue puts nothing before the token reply', async () => {
    const { raw } = await exchange(port, [`PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n${TTL}: 60\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n`]);
    assert.ok(raw.startsWith(`HTTP/1.1 200 OK\r\nx-aws-ec2-metadata-token-ttl-seconds: 60\r\n`), JSON.stringify(raw.slice(0, 80)));
  });

  test('a token PUT that is not the first request on its connection is 400, and no token is issued', async () => {
    const put = `PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n${TTL}: 60\r\n\r\n`;
    // One after the other on a kept-alive connection...
    const { raw: sequential, closed } = await exchange(port, ['GET /meta-data HTTP/1.1\r\nHost: x\r\n\r\n', put]);
    assert.ok(closed, 'the 400 closes the connection too, so a retry goes on a new one');
    const replies = sequential.split(/(?=HTTP\/1\.1 )/);
    assert.equal(replies.length, 2, sequential);
    assert.match(replies[0]!, /^HTTP\/1\.1 200 /);
    assert.match(replies[1]!, /^HTTP\/1\.1 400 /);
    assert.match(replies[1]!, /first request on a new connection/);
    assert.match(replies[1]!, /\r\nconnection: close\r\n/i);
    // ... and pipelined, where the token reply could have shared a segment with the first.
    const { raw: pipelined } = await exchange(port, [`GET /meta-data HTTP/1.1\r\nHost: x\r\n\r\n${put}`]);
    assert.doesNotMatch(pipelined, /token-\d+/);
    assert.match(pipelined, /HTTP\/1\.1 400 /);
  });

  test('EC2 replies close their connection, so a pooled client never sends its next token PUT on a used one', async () => {
    const { raw, closed } = await exchange(port, ['GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n']);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.match(raw, /\r\nconnection: close\r\n/i);
    assert.ok(closed);
    // NoCloud replies keep theirs (cloud-init's NoCloud source may reuse it).
    const nocloud = await exchange(port, ['GET /meta-data HTTP/1.1\r\nHost: x\r\n\r\n']);
    assert.equal(nocloud.closed, false);
  });

  test('an unknown Expect: is answered by the routes, not with node:http\'s 417', async () => {
    const { raw } = await exchange(port, ['GET /meta-data HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n']);
    assert.match(raw, /^HTTP\/1\.1 200 /);
  });

  test('a token issued to VM A is refused for VM B', async () => {
    const t = await token();
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).body, 'i-0a1b2c3d');
    current = vmB; // same address, now another VM (or B got hold of A's token)
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 401);
    const tb = await token();
    assert.equal((await ec2('/latest/meta-data/instance-id', tb)).body, 'i-bbbb');
    current = vmA;
    assert.equal((await ec2('/latest/meta-data/instance-id', tb)).status, 401);
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 200);
  });

  test('tokens expire after their TTL', async () => {
    const t = await token('10');
    now += 9_999;
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 200);
    now += 1;
    assert.equal((await ec2('/latest/meta-data/instance-id', t)).status, 401);
  });

  test('bad TTL is 400', async () => {
    for (const ttl of ['0', '21601', 'abc', '-5', '1.5', '']) {
      const r = await request(port, '/latest/api/token', {
        method: 'PUT',
        headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
      });
      assert.equal(r.status, 400, JSON.stringify(ttl));
    }
    assert.equal((await request(port, '/latest/api/token', { method: 'PUT' })).status, 400);
  });

  test('token endpoint: PUT only, and not through a proxy', async () => {
    const r = await get('/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': '60' });
    assert.equal(r.status, 405);
    const proxied = await request(port, '/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '1.2.3.4' },
    });
    assert.equal(proxied.status, 403);
  });

  test('a throwing onFetch does not affect the guest', async () => {
    onFetchThrows = true;
    const r = await get('/meta-data');
    assert.equal(r.status, 200);
    assert.equal(errors.length, 1);
  });

  test('a throwing lookup is a 500 and goes to onError', async () => {
    const r = await request(port, '/meta-data', { localAddress: '127.0.0.9' });
    assert.equal(r.status, 500);
    assert.equal(errors.length, 1);
  });
});

describe('metadata server defaults', () => {
  test('default tokens are random and unguessable-looking', async () => {
    const server = createMetadataServer({ lookup: () => vmA, onFetch: () => {} });
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      const put = () =>
        request(port, '/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '5' } });
      const [a, b] = [(await put()).body, (await put()).body];
      assert.notEqual(a, b);
      assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    } finally {
      await server.close();
    }
  });

  test('IPv4-mapped source addresses are unwrapped on a dual-stack socket', async (t) => {
    const seen: string[] = [];
    const server = createMetadataServer({ lookup: (ip) => (seen.push(ip), vmA), onFetch: () => {} });
    let port: number;
    try {
      ({ port } = await server.listen('::', 0));
    } catch {
      cannotRun(t, 'no IPv6 on this machine');
      return;
    }
    try {
      assert.equal((await request(port, '/meta-data')).status, 200);
      assert.deepEqual(seen, ['127.0.0.1']);
    } finally {
      await server.close();
    }
  });

  test('close() does not wait for idle keep-alive connections', async (t) => {
    const server = createMetadataServer({ lookup: () => vmA, onFetch: () => {} });
    const { port } = await server.listen('127.0.0.1', 0);
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/meta-data', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    // Fake timers stop close()'s 1 s force-close from rescuing it: only dropping the idle
    // connection at once lets it finish before the connection's 5 s keep-alive ends.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    await within(server.close(), 4_000, 'close() waited for the idle keep-alive connection');
    agent.destroy();
  });
});
