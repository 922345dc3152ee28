/**
 * Where a VM's interactive serial console is: `GET /v1/vms/{name}/console/ws`, a WebSocket on
 * the control plane (console output as binary frames, keystrokes back). Browser-safe: the
 * panel opens it with the session cookie; Node callers add their bearer token themselves.
 */

/** The console WebSocket's URL of VM `name` on the control plane at `baseUrl` (http→ws, https→wss). */
export function consoleSocketUrl(baseUrl: string, name: string, offset?: number): string {
  const u = new URL(`${baseUrl.replace(/\/+$/, '')}/v1/vms/${encodeURIComponent(name)}/console/ws`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (offset !== undefined) u.searchParams.set('offset', String(offset));
  return u.toString();
}
