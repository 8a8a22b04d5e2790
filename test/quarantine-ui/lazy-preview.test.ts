// Under `mailmoat start` the console shares its process with SMTP and the scan workers: loading
// the console must not load jsdom and DOMPurify (~700 module files, ~100 MB); the first preview
// does (quarantine-ui/lib/preview.ts). Checked in a fresh Node process, whose module loads a hook
// records.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

const SCRIPT = `
import { registerHooks } from 'node:module';
const loaded = new Set();
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); loaded.add(r.url); return r; } });
const heavy = () => [...loaded].filter((u) => /node_modules\\/(jsdom|dompurify)\\//.test(u)).length > 0;
await import(${JSON.stringify(path.join(ROOT, 'quarantine-ui/server.ts'))});
const afterConsole = heavy();
const { sanitizeForPreview } = await import(${JSON.stringify(path.join(ROOT, 'quarantine-ui/lib/preview.ts'))});
const html = sanitizeForPreview('<p onclick="x()">hi<script>alert(1)</script></p>', { remoteImages: false, inlineImages: new Map() }).html;
console.log(JSON.stringify({ afterConsole, afterPreview: heavy(), html }));
`;

it('the console loads without jsdom/DOMPurify; the first preview loads them and sanitises', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { afterConsole: boolean; afterPreview: boolean; html: string };
  expect(r).toMatchObject({ afterConsole: false, afterPreview: true });
  expect(r.html).toContain('hi');
  expect(r.html).not.toMatch(/script|onclick/);
});
