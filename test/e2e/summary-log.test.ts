// One summary line per message, as an administrator greps the log: a real gateway (SMTP front,
// workers, clamd, spamd, the demo mailbox downstream) in JSON and in text format.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type LogFormat } from '../../gateway/log.ts';
import { EICAR } from '../support/eicar.ts';
import { attachment, buildMessage, text as textPart } from '../support/mime.ts';
import { sendRaw, startTestGateway, waitFor, waitForStatus, type TestGateway } from '../support/gateway.ts';

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
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test', 'carol@other.test'] }, message('lunch', 'See you at noon.'), { name: 'mail.sender.test' });
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
      expect(s.to).toEqual([expect.objectContaining({ to: 'alice@example.test', status: 'sent' }), expect.objectContaining({ to: 'carol@other.test', status: 'sent' })]);
      const d = s.delays as Record<string, number>;
      expect(d.total).toBeGreaterThanOrEqual(d.scan);
    } else {
      // syslog-like: ISO time, level, program[pid]
      expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO mailmoat\\[${process.pid}\\]: ${id}: `));
    }
  });

  it('a quarantined virus leaves one summary line with class=virus and status=quarantined', async () => {
    const sent = await sendRaw(gw.smtpPort, { from: 'bob@sender.test', to: ['alice@example.test'] }, buildMessage({ multipart: 'mixed', parts: [textPart('see attached\r\n'), attachment('eicar.txt', EICAR)] }));
    expect(sent.code).toBe(250);
    const id = sent.id!;
    await waitForStatus(gw, id, ['quarantined']);
    await waitFor(() => (summariesOf(log.lines, id, format).length ? true : undefined), { what: 'summary line' });
    const found = summariesOf(log.lines, id, format);
    expect(found).toHaveLength(1);
    const text = format === 'json' ? (found[0] as { msg: string }).msg : (found[0] as string);
    expect(text).toMatch(new RegExp(`${id}: state=quarantined from=<bob@sender\\.test>, client=127\\.0\\.0\\.1, helo=client\\.sender\\.test, to=<alice@example\\.test> status=quarantined, class=virus score=[-\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, size=\\d+( role=worker)?$`));
  });
});
