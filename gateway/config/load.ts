// Loading the config file: YAML syntax errors and schema errors both end in a ConfigError whose
// message names the file, the key and what was expected, so that a broken file is refused at
// start with a message an administrator can act on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { resolveConsoleAuthPaths } from './console-auth.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read config file: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

/** Parses and validates config text; `file` names the source in messages and anchors relative paths. */
export function parseConfig(text: string, file: string): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${file}: invalid YAML:\n${doc.errors.map((e) => `  ${e.message}`).join('\n')}`);
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new ConfigError(`${file}: invalid config:\n${result.error.issues.map((i) => `  ${describeIssue(i)}`).join('\n')}`);
  }
  return resolvePaths(result.data, path.dirname(path.resolve(file)));
}

export function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? formatPath(issue.path) : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length > 0 ? `${key}.` : '';
    return issue.keys.map((k) => `${where}${k}: unknown key`).join('\n  ');
  }
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) {
    return `${key}: required (${issue.expected})`;
  }
  return `${key}: ${issue.message}`;
}

/** domains["a.test"].downstream[0].port: dotted keys and indexes stay unambiguous. */
function formatPath(keys: readonly PropertyKey[]): string {
  return keys
    .map((k, i) => {
      if (typeof k === 'number') return `[${k}]`;
      const name = String(k);
      if (name.includes('.')) return `["${name}"]`;
      return i === 0 ? name : `.${name}`;
    })
    .join('');
}

function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string) => path.resolve(base, p);
  return {
    ...config,
    dataDir: abs(config.dataDir),
    clamd: {
      ...config.clamd,
      socket: config.clamd.socket && abs(config.clamd.socket),
      databaseDir: config.clamd.databaseDir && abs(config.clamd.databaseDir),
    },
    spamd: { ...config.spamd, socket: config.spamd.socket && abs(config.spamd.socket) },
    redis: { ...config.redis, socket: config.redis.socket && abs(config.redis.socket) },
    demo: config.demo && { mailbox: { ...config.demo.mailbox, dir: abs(config.demo.mailbox.dir) } },
    urls: { ...config.urls, badSitesFile: config.urls.badSitesFile && abs(config.urls.badSitesFile) },
    authentication: {
      ...config.authentication,
      arcSeal: config.authentication.arcSeal && { ...config.authentication.arcSeal, keyFile: abs(config.authentication.arcSeal.keyFile) },
    },
    tls: { ...config.tls, certificates: config.tls.certificates.map((c) => ({ ...c, cert: abs(c.cert), key: abs(c.key) })) },
    console: { ...config.console, auth: resolveConsoleAuthPaths(config.console.auth, base) },
  };
}
