// The summary line and the text log format, as pure functions: untrusted text (HELO, addresses,
// replies) cannot break the one line or forge a field; text is the default for a terminal and journald.
import { describe, expect, it } from 'vitest';
import { defaultLogFormat, textLine } from '../../gateway/log.ts';
import { summarise, summaryLine } from '../../gateway/summary.ts';
import type { MessageRecord } from '../../gateway/store/metadata.ts';

const record: MessageRecord = {
  id: '01JTEST',
  receivedAt: 1_000_000,
  clientIp: '192.0.2.7',
  helo: 'evil\r\nmailmoat[1]: 01JOTHER: state=delivered',
  submittedBy: null,
  envelope: null,
  mailFrom: 'bob@sender.test',
  rcptTo: ['alice@example.test', 'carol@example.test'],
  size: 2345,
  subject: null,
  status: 'delivered',
  verdict: 'spam',
  reason: 'score 7.1',
  report: {
    virus: { status: 'clean' },
    spam: { status: 'skipped', reason: 'x' },
    score: { spam: 7.1, urls: 0, auth: 0, total: 7.1, threshold: 5, highThreshold: 10 },
    timing: { startedAt: 1_000_100, finishedAt: 1_001_300 },
  },
  lastReply: null,
  updatedAt: 0,
};

describe('summary line', () => {
  it('has every recipient with its outcome and reply, class, score, the four delays and size', () => {
    const s = summarise(
      record,
      [
        { recipient: 'alice@example.test', outcome: 'delivered', reply: 'mx1:25: 250 2.0.0 Ok' },
        { recipient: 'carol@example.test', outcome: 'failed', reply: 'mx1:25: 550 5.1.1 no such user' },
      ],
      'bounced',
      1_001_600,
    );
    expect(summaryLine(s)).toBe(
      '01JTEST: state=bounced from=<bob@sender.test>, client=192.0.2.7, helo=evil??mailmoat[1]:?01JOTHER:?state=delivered, ' +
        'to=<alice@example.test> status=sent (mx1:25: 250 2.0.0 Ok), to=<carol@example.test> status=bounced (mx1:25: 550 5.1.1 no such user), ' +
        'class=spam score=7.1, delays=0.1/1.2/0.3/1.6, size=2345',
    );
  });
  it('says "-" for delays it cannot know (held before its scan ran)', () => {
    const s = summarise({ ...record, report: null, verdict: 'unscannable' }, [], 'held', 1_002_000);
    expect(summaryLine(s)).toMatch(
      /to=<alice@example\.test> status=held, to=<carol@example\.test> status=held, class=unscannable score=-, delays=-\/-\/-\/2, size=2345$/,
    );
  });
});

describe('text log format', () => {
  it('one line an entry, however the fields look', () => {
    const line = textLine({ level: 40, time: 0, pid: 7, name: 'mailmoat', msg: 'two\nlines', reply: '451 4.7.1 try "later"', n: 3 });
    expect(line).toBe('1970-01-01T00:00:00.000Z WARN mailmoat[7]: two\\nlines reply="451 4.7.1 try \\"later\\"" n=3');
    expect(textLine({ level: 30, time: 0, pid: 7, msg: 'hi' }, true)).toBe('<6>hi');
  });
  it('is the default on a terminal and under journald, JSON otherwise', () => {
    expect(defaultLogFormat({}, true)).toBe('text');
    expect(defaultLogFormat({ JOURNAL_STREAM: '8:1234' }, false, '8:1234')).toBe('text');
    // inherited from a parent whose stdout went to the journal, while ours goes to a file
    expect(defaultLogFormat({ JOURNAL_STREAM: '8:1234' }, false, '8:9999')).toBe('json');
    expect(defaultLogFormat({}, false)).toBe('json');
  });
});
