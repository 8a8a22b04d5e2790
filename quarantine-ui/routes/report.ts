// Report spam that got through: upload one or many .eml files (size-limited) or paste a raw
// message with its full headers. Each one is learned as spam through gateway/learning.ts (the
// same code the reportspam@ address will use), recorded, and the page says what happened to it.
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../ctx.ts';
import { learnMessage, type LearnResult } from '../../gateway/learning.ts';
import { field } from '../lib/forms.ts';

interface FilePart {
  type: 'file';
  filename: string;
  file: { truncated?: boolean };
  toBuffer(): Promise<Buffer>;
}

const isFilePart = (p: unknown): p is FilePart => typeof p === 'object' && p !== null && (p as { type?: string }).type === 'file';

export async function registerReportRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const cfg = ctx.deps.config.console.upload;

  const page = async (req: Parameters<Ctx['render']>[0], reply: Parameters<Ctx['render']>[1], data: Record<string, unknown> = {}, status = 200) =>
    ctx.render(
      req,
      reply,
      'report',
      {
        title: 'Report spam',
        maxFileBytes: cfg.maxFileBytes,
        maxFiles: cfg.maxFiles,
        recent: await ctx.deps.learnLog.recent({ actor: ctx.user(req).account.username, limit: 20 }),
        results: null,
        ...data,
      },
      status,
    );

  app.get('/report', async (req, reply) => page(req, reply));

  app.post('/report', { config: { rateLimit: { max: 30, timeWindow: 60_000 } } }, async (req, reply) => {
    const user = ctx.user(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const parts = ([] as unknown[]).concat(body.files ?? []).filter(isFilePart);
    const inputs: { name: string; source: 'upload' | 'paste'; raw: Buffer | null; note?: string }[] = [];
    for (const p of parts) {
      const buf = await p.toBuffer();
      if (!p.filename && buf.length === 0) continue; // the empty file input of a form sent without files
      inputs.push(
        p.file.truncated
          ? { name: p.filename, source: 'upload', raw: null, note: `larger than ${cfg.maxFileBytes} bytes` }
          : { name: p.filename, source: 'upload', raw: buf },
      );
    }
    const pasted = field(body, 'raw', cfg.maxFileBytes + 1);
    const truncated = (body.raw as { valueTruncated?: boolean } | undefined)?.valueTruncated === true;
    if (pasted.trim()) {
      inputs.push(
        truncated || Buffer.byteLength(pasted) > cfg.maxFileBytes
          ? { name: 'pasted message', source: 'paste', raw: null, note: `larger than ${cfg.maxFileBytes} bytes` }
          : { name: 'pasted message', source: 'paste', raw: Buffer.from(pasted.replace(/\r?\n/g, '\r\n'), 'utf8') },
      );
    }
    if (inputs.length === 0) return page(req, reply, { error: 'Choose one or more .eml files, or paste a message.' }, 400);
    const results: { name: string; result: LearnResult | { outcome: 'refused'; detail: string } }[] = [];
    for (const input of inputs) {
      if (!input.raw) {
        await ctx.deps.learnLog.record({
          actor: user.account.username,
          source: input.source,
          messageId: null,
          name: input.name,
          sha256: '',
          size: 0,
          class: 'spam',
          outcome: 'refused',
          detail: `not learned: ${input.note}`,
        });
        results.push({ name: input.name, result: { outcome: 'refused', detail: `not learned: it is ${input.note}` } });
        continue;
      }
      const r = await learnMessage({ spamd: ctx.deps.spamd, log: ctx.deps.learnLog }, input.raw, {
        as: 'spam',
        actor: user.account.username,
        source: input.source,
        name: input.name,
        maxBytes: cfg.maxFileBytes,
      });
      results.push({ name: input.name, result: r });
    }
    const learned = results.filter((r) => r.result.outcome === 'learned').length;
    await ctx.audit(req, {
      action: 'report-spam',
      target: `${results.length} message(s)`,
      outcome: learned === results.length ? 'ok' : learned > 0 ? 'ok' : 'failed',
      detail: results.map((r) => `${r.name}: ${r.result.outcome}`).join('; '),
    });
    return page(req, reply, { results });
  });
}
