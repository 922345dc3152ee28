/**
 * The VM's interactive serial console: xterm.js over the console WebSocket, the same console
 * `butter vm console` drives. Output bytes go to the terminal as they come; keystrokes go back.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { consoleSocketUrl } from '../../../../src/sdk/console-socket.ts';
import type { Client } from '../../../../src/sdk/client.ts';

type Status = 'connecting' | 'open' | 'closed';

export function VmConsole({ client, name }: { client: Client; name: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    const term = new Terminal({ rows: 24, fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace', fontSize: 14, scrollback: 2000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    fit.fit();
    const onResize = () => fit.fit();
    addEventListener('resize', onResize);
    setStatus('connecting');
    const ws = new WebSocket(consoleSocketUrl(client.url, name));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => setStatus('open');
    ws.onmessage = (e) => term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data as ArrayBuffer));
    ws.onclose = () => setStatus('closed');
    const typing = term.onData((d) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(d);
    });
    return () => {
      removeEventListener('resize', onResize);
      typing.dispose();
      ws.onclose = null;
      ws.close();
      term.dispose();
    };
  }, [client, name, attempt]);
  return (
    <div class="console">
      <p class="muted" aria-live="polite">
        Serial console: <span data-testid="console-status">{status}</span>
        {status === 'closed' ? (
          <>
            {' '}
            <button type="button" class="small" onClick={() => setAttempt(attempt + 1)}>
              Reconnect
            </button>
          </>
        ) : null}
      </p>
      <div class="terminal" ref={box} data-testid="terminal" />
    </div>
  );
}
