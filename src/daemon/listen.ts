/** `HOST:PORT` parsing for --listen, with the field named in errors. */
export function parseListen(text: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+)?(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new Error(`listen: expected HOST:PORT, got ${JSON.stringify(text)}`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port > 65535) throw new Error(`listen: port ${port} out of range`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}
