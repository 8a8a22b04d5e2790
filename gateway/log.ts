// One pino logger per process. Secrets never go into log fields: config objects are logged
// only through redact paths below.
//
// Two formats (config `log.format`): `json` (one object a line, for log shippers) and `text`
// (one line an entry, grep-able like syslog: `time LEVEL mailmoat[pid]: msg key=value …`). Without
// a setting, text when a person or journald reads stdout (a TTY, or systemd's JOURNAL_STREAM),
// JSON otherwise. Under journald the line starts with its `<N>` syslog priority and leaves the
// time and `mailmoat[pid]` to the journal, which stamps both itself.
import { fstatSync } from 'node:fs';
import { pino, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  level?: string;
  name?: string;
  format?: LogFormat;
  /** Where lines go (default stdout); tests pass a collector. */
  out?: { write(line: string): unknown };
}

const REDACT = { paths: ['*.password', '*.pass', '*.secret', '*.key', 'config.redis.url', 'config.database.url', '*.sentinelPassword'], censor: '[redacted]' };

export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env, isTty = process.stdout.isTTY === true, stdout = stdoutId()): LogFormat {
  return isTty || toJournal(env, stdout) ? 'text' : 'json';
}

/**
 * systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected to the journal; a
 * child whose stdout was redirected elsewhere inherits the variable, so it is compared with
 * stdout itself (sd_journal_stream_fd(3)).
 */
function toJournal(env: NodeJS.ProcessEnv, stdout: string | undefined): boolean {
  return Boolean(env.JOURNAL_STREAM) && (stdout === undefined || env.JOURNAL_STREAM === stdout);
}

function stdoutId(): string | undefined {
  try {
    const s = fstatSync(1);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? defaultLogFormat();
  const level = options.level ?? process.env.MAILMOAT_LOG_LEVEL ?? 'info';
  const base = { name: options.name ?? 'mailmoat', level, redact: REDACT };
  if (format === 'json') return options.out ? pino(base, options.out) : pino(base);
  const out = options.out ?? process.stdout;
  const journal = !options.out && toJournal(process.env, stdoutId());
  return pino(base, { write: (line: string) => out.write(`${textLine(JSON.parse(line), journal)}\n`) });
}

/** For tests and tools that must stay quiet. */
export const silentLogger = (): Logger => pino({ level: 'silent' });

const LEVELS: Record<number, { name: string; syslog: number }> = {
  10: { name: 'TRACE', syslog: 7 },
  20: { name: 'DEBUG', syslog: 7 },
  30: { name: 'INFO', syslog: 6 },
  40: { name: 'WARN', syslog: 4 },
  50: { name: 'ERROR', syslog: 3 },
  60: { name: 'FATAL', syslog: 2 },
};
/** pino's own fields, and `summary` whose text is already the message (gateway/summary.ts). */
const OWN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'summary']);

/** One pino entry as one text line: no field may break it (values are quoted, newlines escaped). */
export function textLine(entry: Record<string, unknown>, journal = false): string {
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level), syslog: 6 };
  const fields = Object.entries(entry)
    .filter(([k, v]) => !OWN_FIELDS.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${fieldValue(k, v)}`);
  const msg = String(entry.msg ?? '').replace(/\r?\n/g, '\\n');
  const text = [msg, ...fields].filter(Boolean).join(' ');
  if (journal) return `<${level.syslog}>${text}`;
  return `${new Date(Number(entry.time)).toISOString()} ${level.name} ${entry.name ?? 'mailmoat'}[${entry.pid}]: ${text}`;
}

function fieldValue(key: string, value: unknown): string {
  const v = key === 'err' && value && typeof value === 'object' && 'message' in value ? (value as { message: unknown }).message : value;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}
