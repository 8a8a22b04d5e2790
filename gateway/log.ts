// One pino logger per process. Secrets never go into log fields: config objects are logged
// only through redact paths below.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'mailmoat',
    level: options.level ?? process.env.MAILMOAT_LOG_LEVEL ?? 'info',
    redact: { paths: ['*.password', '*.pass', '*.secret', '*.key', 'config.redis.url', 'config.database.url', '*.sentinelPassword'], censor: '[redacted]' },
  });
}

/** For tests and tools that must stay quiet. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
