// `mailmoat check-config [FILE] [--changed]`: validates a config file and prints the effective
// settings, or with --changed only those that differ from the defaults (as `postconf -n` does).
// The output may be pasted into a ticket: passwords (fields, or in URLs) are never printed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig, parseConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

/** --config, else $MAILMOAT_CONFIG, else /etc/mailmoat/mailmoat.yaml, else the demo's. */
export function findConfigFile(explicit: string | undefined): string {
  if (explicit) return explicit;
  if (process.env.MAILMOAT_CONFIG) return process.env.MAILMOAT_CONFIG;
  if (existsSync('/etc/mailmoat/mailmoat.yaml')) return '/etc/mailmoat/mailmoat.yaml';
  return path.join(REPO_ROOT, 'deploy/demo.yaml');
}

export function hideSecrets(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (/password|secret/i.test(key)) return '[hidden]';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i.test(value)) {
    const url = new URL(value);
    url.password = '***';
    return url.toString();
  }
  return value;
}

export function checkConfig(file: string, o: { changed?: boolean } = {}): number {
  const config = loadConfig(file);
  console.log(`${file}: OK`);
  if (!o.changed) {
    console.log(JSON.stringify(config, hideSecrets, 2));
    return 0;
  }
  for (const [key, value] of changedSettings(file, config)) console.log(`${key} = ${JSON.stringify(value, hideSecrets)}`);
  return 0;
}

/**
 * The settings of `config` that differ from what the same file's required keys alone would give
 * (hostname, dataDir and domains have no defaults: they are always listed, domains as written). Leaves are compared;
 * a list counts as one value.
 */
export function changedSettings(file: string, config: Config): [string, unknown][] {
  const raw = (parse(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  const required = { hostname: raw.hostname, dataDir: raw.dataDir, domains: raw.domains };
  const defaults = parseConfig(JSON.stringify(required), file);
  const out: [string, unknown][] = [];
  const walk = (prefix: string, value: unknown, base: unknown, always: boolean) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) {
        const b = base && typeof base === 'object' ? (base as Record<string, unknown>)[k] : undefined;
        walk(prefix ? `${prefix}.${k}` : k, v, b, always);
      }
      return;
    }
    if (value === undefined) return;
    // hideSecrets needs the leaf's own name.
    const leaf = prefix.slice(prefix.lastIndexOf('.') + 1);
    if (always || JSON.stringify(value) !== JSON.stringify(base)) out.push([prefix, hideSecrets(leaf, value)]);
  };
  for (const [k, v] of Object.entries(config)) {
    // Each domain's own defaults would repeat for every domain: its keys as the file sets them.
    if (k === 'domains') walk(k, raw.domains, undefined, true);
    else walk(k, v, (defaults as Record<string, unknown>)[k], k in required);
  }
  return out;
}
