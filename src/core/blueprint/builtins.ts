/** The variables every template sees besides the service's own, under these names. */
import { TEMPLATE_FUNCTIONS } from './sandbox.ts';
import type { Builtins } from './types.ts';

export const TEMPLATE_BUILTINS = ['service', 'network', 'index', 'dns_name', 'instance_name'] as const;

export function builtinVars(b: Builtins): Record<string, unknown> {
  const vars: Record<string, unknown> = { service: b.service, network: b.network, index: b.index, dns_name: b.dnsName };
  if (b.instanceName !== undefined) vars.instance_name = b.instanceName;
  return vars;
}

/**
 * A variable name usable in a template (`{{ PrivateIps }}`): an identifier, and none of
 * Object's own properties (`constructor`, `toString`: the sandbox hides those names).
 */
export function isVarName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !Object.prototype.hasOwnProperty.call(Object.prototype, name);
}

/** Names a blueprint may not declare: the built-ins and the template functions (`range`). */
export function reservedName(name: string): string | undefined {
  if ((TEMPLATE_BUILTINS as readonly string[]).includes(name)) return `is a built-in variable (${TEMPLATE_BUILTINS.join(', ')}): choose another name`;
  if ((TEMPLATE_FUNCTIONS as readonly string[]).includes(name)) return `is a template function (${TEMPLATE_FUNCTIONS.join(', ')}): choose another name`;
  return undefined;
}
