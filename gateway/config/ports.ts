// Two listeners of one config on the same port would fail at start with EADDRINUSE and a stack
// trace naming no key; the config check refuses it instead, naming both keys. Port 0 (a free port,
// for tests) never collides; two different non-wildcard addresses may share a port.

export interface ListenerKey {
  /** The config key, e.g. "smtp.listen". */
  key: string;
  host: string;
  port: number;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

const overlap = (a: string, b: string) => a === b || WILDCARD.has(a) || WILDCARD.has(b);

/** Every pair of listeners that would bind the same port: "smtp.listen and health.smtp both use port 25". */
export function portClashes(listeners: ListenerKey[]): { key: string; message: string }[] {
  const clashes: { key: string; message: string }[] = [];
  listeners.forEach((a, i) => {
    for (const b of listeners.slice(0, i)) {
      if (a.port !== 0 && a.port === b.port && overlap(a.host, b.host)) {
        clashes.push({ key: a.key, message: `port ${a.port} is used twice: by ${b.key} (${b.host}) and ${a.key} (${a.host})` });
      }
    }
  });
  return clashes;
}

/** The listeners a config opens (the submission listener and the console only when enabled). */
export function configListeners(c: {
  smtp: { listen: { host: string; port: number } };
  submission: { enabled: boolean; listen: { host: string; port: number } };
  console: { enabled: boolean; listen: { host: string; port: number } };
  health: Partial<Record<'listen' | 'smtp' | 'worker' | 'console', { host: string; port: number }>>;
  demo?: { mailbox: { listen: { host: string; port: number } } };
}): ListenerKey[] {
  const out: ListenerKey[] = [{ key: 'smtp.listen', ...c.smtp.listen }];
  if (c.submission.enabled) out.push({ key: 'submission.listen', ...c.submission.listen });
  if (c.console.enabled) out.push({ key: 'console.listen', ...c.console.listen });
  for (const k of ['listen', 'smtp', 'worker', 'console'] as const) {
    const l = c.health[k];
    if (l) out.push({ key: `health.${k}`, ...l });
  }
  if (c.demo) out.push({ key: 'demo.mailbox.listen', ...c.demo.mailbox.listen });
  return out;
}
