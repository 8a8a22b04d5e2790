// Issue 16: `mailmoat start` runs SMTP, the workers and the console in one process, whose peak
// resident memory is bounded. What only the analysis thread (cheerio: HTML disarming and URL
// extraction) or a console page (mailparser: the message view) needs is loaded at first use, not
// with the roles. Checked in a fresh Node process whose module loads a hook records.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const file = (p: string) => JSON.stringify(path.join(ROOT, p));

const SCRIPT = `
import { registerHooks } from 'node:module';
const loaded = new Set();
registerHooks({ load(url, ctx, next) { loaded.add(url); return next(url, ctx); } });
const has = (name) => [...loaded].some((u) => u.includes('/node_modules/' + name + '/'));
const heavy = () => ({ cheerio: has('cheerio'), undici: has('undici'), parse5: has('parse5'), mailparser: has('mailparser') });
await import(${file('gateway/roles.ts')});
await import(${file('quarantine-ui/server.ts')});
const atStart = heavy();
const { disarmHtml } = await import(${file('scanners/html-disarm.ts')});
const disarmed = disarmHtml('<p onclick="x()">hi<script>alert(1)</script></p>').html;
const afterDisarm = heavy();
const { parseForView } = await import(${file('quarantine-ui/lib/preview.ts')});
const { view } = await parseForView(Buffer.from('Subject: hello there\\r\\nFrom: a@example.com\\r\\n\\r\\nbody\\r\\n'));
console.log(JSON.stringify({ atStart, afterDisarm, afterView: heavy(), disarmed, subject: view.subject }));
`;

it('the roles and the console load without cheerio, undici, parse5 and mailparser; the first disarm and the first message view load and use them', () => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  expect(r.atStart).toEqual({ cheerio: false, undici: false, parse5: false, mailparser: false });
  expect(r.afterDisarm).toMatchObject({ cheerio: true, parse5: true, mailparser: false });
  expect(r.afterView).toMatchObject({ mailparser: true });
  expect(r.disarmed).toContain('hi');
  expect(r.disarmed).not.toMatch(/script|onclick/);
  expect(r.subject).toBe('hello there');
});
