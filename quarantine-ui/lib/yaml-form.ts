// Settings typed in the console as YAML (the same text as in the config file), read strictly:
// a syntax error or a duplicate key is refused with its line, never half-read.
import { parseDocument, stringify } from 'yaml';

export function readYaml(text: string, what: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) return { ok: false, error: `${what}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}` };
  const value = doc.toJS() as unknown;
  return { ok: true, value: value ?? {} };
}

export function writeYaml(value: unknown): string {
  return value === undefined || (typeof value === 'object' && value !== null && Object.keys(value).length === 0) ? '' : stringify(value, { lineWidth: 0 });
}
