import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsServer, type WhoIs } from './metrics-server.ts';

const TOKEN = `bt_${'a'.repeat(12)}_${'b'.repeat(32)}`;
let answer: Awaited<ReturnType<WhoIs>> | Error = new Error('connect ECONNREFUSED');
const asked: string[] = [];
const server = new MetricsServer({
  scrape: async () => 'butter_up 1\n',
  whois: async (token) => {
    asked.push(token);
    if (answer instanceof Error) throw answer;
    return answer;
  },
});
after(() => server.close());

test("a scraper's token is asked of the control plane once a minute at most; an unreachable control plane is 503 and not remembered", async () => {
  const url = await server.listen('127.0.0.1', 0);
  const get = (path = '/metrics', auth = `Bearer ${TOKEN}`) => fetch(`${url}${path}`, { headers: { authorization: auth } });
  assert.equal((await get()).status, 503);
  answer = 'metrics';
  const ok = await get();
  assert.equal(ok.status, 200, 'the 503 was not kept');
  assert.equal(await ok.text(), 'butter_up 1\n');
  assert.equal((await get()).status, 200);
  assert.deepEqual(asked, [TOKEN, TOKEN], 'the third scrape used the kept answer');
  assert.equal((await get('/metrics', 'Bearer nonsense')).status, 401, 'a malformed token is not even asked about');
  assert.equal(asked.length, 2);
  assert.equal((await get('/')).status, 404);
  assert.equal((await fetch(`${url}/metrics`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 405);
});
