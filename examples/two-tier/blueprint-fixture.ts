/**
 * `butter test examples/two-tier`: before the front end (the blueprint under test), its back
 * end is made from back/blueprint.yml with a token no other run uses, and the front is told
 * the back end's DNS name. Then two paths: front -> back:8080, and the internet -> front:80.
 * The front's answer, through its published endpoint, must hold the back end's page; the back
 * end must not be reachable from outside.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Network, Service, SetupInfo, TestContext } from 'butter/sdk';

export async function setupBeforeTestedService(network: Network, t: TestContext): Promise<SetupInfo> {
  const token = t.uniqueName('token');
  const back = await t.client.service.create(network, t.uniqueName('back'), { blueprint: join(t.dir, 'back', 'blueprint.yml'), vars: { Token: token }, wait: true });
  t.log(`back end ${back.name} is running`);
  return { deploymentInfo: { back: back.name, token }, blueprintVars: { Backend: back.dnsName } };
}

export async function setupAfterTestedService(_network: Network, front: Service, info: SetupInfo, t: TestContext): Promise<void> {
  await t.client.paths.add(front, String(info.deploymentInfo.back), 8080);
  await t.client.paths.add('0.0.0.0/0', front, 80);
}

export async function verify(_network: Network, front: Service, info: SetupInfo, t: TestContext): Promise<void> {
  const back = String(info.deploymentInfo.back);
  const url = `${await t.endpoint(front, 80)}/cgi-bin/front`;
  t.log(`GET ${url}`);
  const page = await t.retry(async () => {
    const r = await t.httpGet(url);
    assert.equal(r.status, 200, `GET ${url}: status ${r.status}`);
    assert.match(r.body, new RegExp(`back ${back}-0 says ${String(info.deploymentInfo.token)}`), `the front's answer holds the back end's; it was ${JSON.stringify(r.body)}`);
    return r.body;
  });
  assert.match(page, new RegExp(`^front ${front.instances[0]!.name} got: `));

  // Only the front end is published: the back end has no endpoint, the paths say the internet
  // cannot reach it, and its port on the node that publishes the front answers nothing.
  await assert.rejects(t.endpoint(back, 8080), /not published/);
  assert.equal(await t.client.paths.internetAccessible(back, 8080), false, "the paths let no one outside reach the back end");
  const node = new URL(url).hostname;
  await assert.rejects(t.httpGet(`http://${node}:8080/`, { timeoutMs: 5000 }), `http://${node}:8080/ must not answer`);
}
