/** Structured logs for the daemons (pino): JSON lines on stderr. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function makeLogger(name: string): Logger {
  // Synchronous: a line is in the file when the call returns, so rotating the file from the
  // main thread (log-rotation.ts) never loses one, and nothing is left unwritten at a crash.
  return pino({ name, level: process.env.BUTTER_LOG_LEVEL ?? 'info' }, pino.destination({ dest: 2, sync: true }));
}
