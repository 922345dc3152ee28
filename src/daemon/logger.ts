/** Structured logs for the daemons (pino): JSON lines on stderr. */
import { pino } from 'pino';

export type Logger = pino.Logger;

export function makeLogger(name: string): Logger {
  return pino({ name, level: process.env.BUTTER_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
