/**
 * `butter test examples/hello-web`: the web service gets a greeting no other run uses, is
 * published to the internet on port 80, and must answer it through the published endpoint (a
 * node's own address) with that greeting and its instance's name.
 */
import assert from 'node:assert/strict';
import type { Network, Service, SetupInfo, TestContext } from 'butter/sdk';

export function setupBeforeTestedService(_network: Network, t: TestContext): SetupInfo {
  return { deploymentInfo: {}, blueprintVars: { Greeting: t.uniqueName('hello') } };
}

export async function setupAfterTestedService(_network: Network, service: Service, _info: SetupInfo, t: TestContext): Promise<void> {
  await t.client.paths.add('0.0.0.0/0', service, 80);
}

export async function verify(_network: Network, service: Service, info: SetupInfo, t: TestContext): Promise<void> {
  const url = await t.endpoint(service, 80);
  t.log(`GET ${url}`);
  // The guest boots and starts httpd in its own time: retried, within a deadline.
  const page = await t.retry(async () => {
    const r = await t.httpGet(url);
    assert.equal(r.status, 200, `GET ${url}: status ${r.status}`);
    return r.body;
  });
  assert.equal(page.trim(), `${String(info.blueprintVars.Greeting)} from ${service.instances[0]!.name}`);
  const consoles = await t.consoleOutput(service);
  for (const [name, text] of Object.entries(consoles)) assert.match(text, /hello-web: httpd is listening on port 80/, `${name}'s console`);
}
