/** The VM's console log as the control plane keeps it (GET logs), read again on demand; the interactive console is vm-console.tsx. */
import type { Client } from '../../../../src/sdk/client.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { useLoad } from '../../app/use-load.ts';

/** Terminal control sequences (colours, cursor moves, resets) would show as garbage in a <pre>. */
// eslint-disable-next-line no-control-regex
const CONTROL = /\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_]|c)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
export const readable = (text: string): string => text.replace(/\r\n?/g, '\n').replace(CONTROL, '');

export function VmLogs({ client, name }: { client: Client; name: string }) {
  const logs = useLoad(() => client.call('vmLogs', { params: { name }, query: { offset: 0 } }), [name]);
  const d = logs.data;
  return (
    <div class="logs">
      <div class="actions">
        <button type="button" onClick={logs.reload}>
          Refresh log
        </button>
        {d && d.start > 0 ? <span class="muted">the first {d.start} bytes are no longer kept</span> : null}
      </div>
      <ApiErrorNote error={logs.error} />
      <pre class="log" tabIndex={0} aria-label="Console log" data-testid="console-log">
        {d ? readable(d.data) || '(no output yet)' : 'Loading…'}
      </pre>
      <CliHint args={['vm', 'logs', name]} />
    </div>
  );
}
