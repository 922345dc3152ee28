/** `butter graph`: who may reach whom, as DOT text (default), SVG or JSON, on stdout or into a file. */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { GRAPH_FORMATS, type GraphFormat } from '../../api/schemas/graph.ts';
import { graph } from '../../sdk/graph.ts';
import { client, UsageError } from '../config.ts';

function formatOpt(v: string): GraphFormat {
  if (!(GRAPH_FORMATS as readonly string[]).includes(v)) throw new UsageError(`format: must be ${GRAPH_FORMATS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as GraphFormat;
}

export function graphCommands(program: Command): void {
  program
    .command('graph')
    .description('who may reach whom: a cluster per network, services with their instances running/total, the internet and CIDRs, an edge per path (tcp:80); DOT text for Graphviz by default')
    .option('--network <name>', 'only this network')
    .option('--format <format>', 'dot (Graphviz text), svg (drawn by Graphviz on the control plane) or json', formatOpt, 'dot' as GraphFormat)
    .option('--json', 'the same as --format json')
    .option('-o, --output <file>', 'write it to FILE instead of stdout')
    .action(async (o: { network?: string; format: GraphFormat; json?: boolean; output?: string }) => {
      const format: GraphFormat = o.json ? 'json' : o.format;
      const out = await graph(client(), { format, ...(o.network !== undefined ? { network: o.network } : {}) });
      const text = typeof out === 'string' ? out : JSON.stringify(out, null, 2) + '\n';
      if (o.output === undefined) process.stdout.write(text);
      else {
        writeFileSync(o.output, text);
        process.stderr.write(`graph written to ${o.output} (${format})\n`);
      }
    });
}
