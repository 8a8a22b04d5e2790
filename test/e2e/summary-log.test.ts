// One summary line per message, as an administrator greps the log: a real gateway (SMTP front,
// workers, clamd, spamd, the demo mailbox downstream) in JSON and in text format.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../gateway/log.ts';
import { EICAR } from '../support/eicar.ts';
import { attachment, buildMessage, text as textPart } from '../support/mime.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';
import { pipelineMetrics, workerMetrics } from '../../gateway/metrics.ts';
import { summarise } from '../../gateway/summary.ts';
import { existsSync } from 'node:fs';

const message = (subject: string, body: string) =>
  `From: Bob <bob@sender.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.test>\r\n\r\n${body}\r\n`;

function gatewayWithLog(format: LogFormat) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', format, out: { write: (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)) } });
  return { lines, start: () => startTestGateway({ logger, domains: { 'example.test': {}, 'other.test': {} } }) };
}

/** The log lines about one message id that are summaries (JSON: the entry's `summary` field; text: the line format). */
const summariesOf = (lines: string[], id: string, format: LogFormat) =>
  format === 'json' ? lines.map((l) => JSON.parse(l)).filter((e) => e.summary?.id === id) : lines.filter((l) => l.includes(`: ${id}: state=`));

describe.each(['json', 'text'] as const)('summary line (%s)', (format) => {
  let gw: TestGateway;
  const log = gatewayWithLog(format);
  beforeAll(async () => {
    gw = await log.start();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('a delivered message leaves exactly one summary line with client, HELO, sender, each recipient, class, score, delays and size', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test', 'carol@other.test'] }, message('lunch', 'See you at noon.'), {
      name: 'mail.sender.test',
    });
    expect(sent.code).toBe(250);
    const id = sent.id!;
    await waitForStatus(gw, id, ['delivered']);
    const found = await waitFor(() => (summariesOf(log.lines, id, format).length ? summariesOf(log.lines, id, format) : undefined), { what: 'summary line' });
    await new Promise((r) => setTimeout(r, 200)); // a second line would have come by now
    expect(summariesOf(log.lines, id, format)).toHaveLength(1);
    const text = format === 'json' ? (found[0] as { msg: string }).msg : (found[0] as string);
    expect(text).toMatch(
      new RegExp(
        `${id}: state=delivered from=<bob@sender\\.test>, client=127\\.0\\.0\\.1, helo=mail\\.sender\\.test, ` +
          `to=<alice@example\\.test> status=sent \\(127\\.0\\.0\\.1:\\d+: 250 [^)]*\\), to=<carol@other\\.test> status=sent \\(127\\.0\\.0\\.1:\\d+: 250 [^)]*\\), ` +
          `class=clean score=-?[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, size=\\d+( role=worker)?$`,
      ),
    );
    if (format === 'json') {
      const s = (found[0] as { summary: Record<string, unknown> }).summary;
      expect(s).toMatchObject({ id, state: 'delivered', client: '127.0.0.1', helo: 'mail.sender.test', from: 'bob@sender.test', class: 'clean' });
      expect(s.to).toEqual([
        expect.objectContaining({ to: 'alice@example.test', status: 'sent' }),
        expect.objectContaining({ to: 'carol@other.test', status: 'sent' }),
      ]);
      const d = s.delays as Record<string, number>;
      expect(d.total).toBeGreaterThanOrEqual(d.scan);
    } else {
      // syslog-like: ISO time, level, program[pid]
      expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO mailmoat\\[${process.pid}\\]: ${id}: `));
    }
  });

  // One recipient domain: the delivery rows and the final status are one commit (ledger
  // finishAllDelivered); the message must leave what the two-step finish leaves.
  it('a message delivered to one domain in one step leaves one summary line, its delivery rows, its delivered event, its metrics, and no spool files', async () => {
    const countOf = async (
      metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown>; metricName?: string }[] }> },
      labels: Record<string, string>,
      name?: string,
    ) =>
      (await metric.get()).values
        .filter((v) => (!name || v.metricName === name) && Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        .reduce((n, v) => n + v.value, 0);
    const endToEndBefore = await countOf(pipelineMetrics.endToEnd, { state: 'delivered' }, 'mailmoat_message_duration_seconds_count');
    const attemptsBefore = await countOf(workerMetrics.deliveries, { outcome: 'delivered' });
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'bob@sender.test', to: ['alice@example.test', 'dave@example.test'] },
      message('one step', 'Both at example.test.'),
      { name: 'mail.sender.test' },
    );
    expect(sent.code).toBe(250);
    const id = sent.id!;
    await waitForStatus(gw, id, ['delivered']);
    const found = await waitFor(() => (summariesOf(log.lines, id, format).length ? summariesOf(log.lines, id, format) : undefined), { what: 'summary line' });
    await new Promise((r) => setTimeout(r, 200)); // a second line would have come by now
    expect(summariesOf(log.lines, id, format)).toHaveLength(1);
    const text = format === 'json' ? (found[0] as { msg: string }).msg : (found[0] as string);
    expect(text).toMatch(
      new RegExp(
        `${id}: state=delivered from=<bob@sender\\.test>, client=127\\.0\\.0\\.1, helo=mail\\.sender\\.test, ` +
          `to=<alice@example\\.test> status=sent \\(127\\.0\\.0\\.1:\\d+: 250 [^)]*\\), to=<dave@example\\.test> status=sent \\(127\\.0\\.0\\.1:\\d+: 250 [^)]*\\), ` +
          `class=clean score=-?[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, size=\\d+( role=worker)?$`,
      ),
    );
    if (format === 'json') {
      // Made from what the scan and the delivery held (no read back): the same facts as its row.
      const s = (found[0] as { summary: ReturnType<typeof summarise> }).summary;
      const fromRow = summarise((await gw.stores.store.get(id))!, await gw.stores.store.deliveries(id), 'delivered', 0);
      expect({ ...s, delays: { ...s.delays, delivery: null, total: 0 } }).toEqual({ ...fromRow, delays: { ...fromRow.delays, delivery: null, total: 0 } });
    }
    // The message log: both recipients' rows, one 'delivered' event naming both, after the attempt.
    const rows = await gw.stores.store.deliveries(id);
    expect(rows.map((d) => [d.recipient, d.outcome])).toEqual([
      ['alice@example.test', 'delivered'],
      ['dave@example.test', 'delivered'],
    ]);
    const events = await gw.stores.store.events(id);
    const kinds = events.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'delivered')).toHaveLength(1);
    expect(kinds.indexOf('delivered')).toBeGreaterThan(kinds.lastIndexOf('delivery-attempt'));
    const delivered = events.find((e) => e.kind === 'delivered')!;
    expect(delivered.detail).toContain('alice@example.test');
    expect(delivered.detail).toContain('dave@example.test');
    expect((await gw.stores.store.get(id))?.lastReply).toMatch(/250/);
    // Metrics as the summary counts them, and the spool cleared.
    expect(await countOf(pipelineMetrics.endToEnd, { state: 'delivered' }, 'mailmoat_message_duration_seconds_count')).toBe(endToEndBefore + 1);
    expect(await countOf(workerMetrics.deliveries, { outcome: 'delivered' })).toBe(attemptsBefore + 2);
    expect(existsSync(gw.stores.spool.messagePath(id))).toBe(false);
    expect(existsSync(gw.stores.spool.outputPath(id))).toBe(false);
  });

  it('a quarantined virus leaves one summary line with class=virus and status=quarantined', async () => {
    const sent = await sendRaw(
      gw.smtpPort,
      { from: 'bob@sender.test', to: ['alice@example.test'] },
      buildMessage({ multipart: 'mixed', parts: [textPart('see attached\r\n'), attachment('eicar.txt', EICAR)] }),
    );
    expect(sent.code).toBe(250);
    const id = sent.id!;
    await waitForStatus(gw, id, ['quarantined']);
    await waitFor(() => (summariesOf(log.lines, id, format).length ? true : undefined), { what: 'summary line' });
    const found = summariesOf(log.lines, id, format);
    expect(found).toHaveLength(1);
    const text = format === 'json' ? (found[0] as { msg: string }).msg : (found[0] as string);
    expect(text).toMatch(
      new RegExp(
        `${id}: state=quarantined from=<bob@sender\\.test>, client=127\\.0\\.0\\.1, helo=client\\.sender\\.test, to=<alice@example\\.test> status=quarantined, class=virus score=[-\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, size=\\d+( role=worker)?$`,
      ),
    );
  });
});
