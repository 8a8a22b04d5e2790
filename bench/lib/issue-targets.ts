// The targets of issue 16 (mailmoat against its peers, same run), printed last: each figure with
// what the issue measured before ("today"), the target, and what this run measured.
import type { Cell, Row } from './scenarios.ts';
import { round, summarize, type Summary } from './stats.ts';

export interface IssueTarget {
  figure: string;
  today: string;
  target: string;
  measured: string;
  pass: boolean | null;
}

/** Per round: rate of `of` ÷ rate of `base` (2 KB, same sessions, both runs complete); summarised over rounds. */
function perRound(cells: Cell[], of: Cell['scenario'], base: Cell['scenario'], sessions: number): Summary | null {
  const pick = (sc: Cell['scenario']) => cells.filter((c) => c.scenario === sc && c.size === '2 KB' && c.sessions === sessions && c.ok);
  const bases = pick(base);
  const xs = pick(of).flatMap((c) => {
    const b = bases.find((x) => x.round === c.round);
    return b && b.rate > 0 ? [c.rate / b.rate] : [];
  });
  const s = summarize(xs);
  return s && { median: round(s.median, 2), min: round(s.min, 2), max: round(s.max, 2), n: s.n };
}

const show = (s: Summary | null | undefined, unit = '') =>
  !s ? 'n/a' : s.n > 1 && s.min !== s.max ? `${s.median}${unit} (${s.min}–${s.max})` : `${s.median}${unit}`;

export function issueTargets(rows: Row[], cells: Cell[], acceptP99: Summary | null | undefined): IssueTarget[] {
  const row = (sc: Cell['scenario'], sessions = 50) => rows.find((r) => r.scenario === sc && r.size === '2 KB' && r.sessions === sessions);
  const cpu = row('full')?.cpuMsPerMessage.mailmoat;
  const full = perRound(cells, 'full', 'postfix', 50);
  const acc50 = perRound(cells, 'accept', 'postfix-accept', 50);
  const acc10 = perRound(cells, 'accept', 'postfix-accept', 10);
  const spamd = row('full-spamd')?.ratioToSpamdAlone;
  const startPeaks = rows
    .filter((r) => (r.scenario === 'full' || r.scenario === 'full-spamd') && r.mailmoatPeakRssMB !== null)
    .map((r) => r.mailmoatPeakRssMB!);
  const rss = startPeaks.length ? Math.max(...startPeaks) : null;
  const at = (s: Summary | null | undefined, ok: (x: number) => boolean) => (s ? ok(s.median) : null);
  return [
    {
      figure: 'gateway CPU per message, full path, 2 KB, spamd off (50 sessions)',
      today: '11–18 ms',
      target: '≤ 4 ms',
      measured: cpu === undefined ? 'n/a' : `${cpu} ms`,
      pass: cpu === undefined ? null : cpu <= 4,
    },
    {
      figure: 'full path msg/s ÷ Postfix end-to-end msg/s (2 KB, 50 sessions)',
      today: '0.14',
      target: '≥ 0.5',
      measured: show(full),
      pass: at(full, (x) => x >= 0.5),
    },
    {
      figure: 'accept msg/s ÷ Postfix accept msg/s (smtp role, 50 sessions)',
      today: '0.69',
      target: '≥ 1.0',
      measured: show(acc50),
      pass: at(acc50, (x) => x >= 1),
    },
    { figure: 'the same at 10 sessions', today: '0.09', target: '≥ 1.0', measured: show(acc10), pass: at(acc10, (x) => x >= 1) },
    {
      figure: 'full path with spamd ÷ spamd alone (2 KB, 50 sessions)',
      today: '0.56',
      target: '≥ 0.9',
      measured: show(spamd),
      pass: at(spamd, (x) => x >= 0.9),
    },
    {
      figure: 'peak RSS of the `start` process (engines excluded)',
      today: '~600 MB',
      target: '≤ 250 MB',
      measured: rss === null ? 'n/a' : `${rss} MB`,
      pass: rss === null ? null : rss <= 250,
    },
    { figure: 'accept p99 at half the max rate', today: '35 ms', target: '≤ 25 ms', measured: show(acceptP99, ' ms'), pass: at(acceptP99, (x) => x <= 25) },
  ];
}

/** CPU ms per message of each server end to end (2 KB, 50 sessions): mailmoat start, Postfix, Haraka. */
export function cpuPerMessageLine(rows: Row[]): string {
  const of = (sc: Cell['scenario'], group: string) => rows.find((r) => r.scenario === sc && r.size === '2 KB' && r.sessions === 50)?.cpuMsPerMessage[group];
  const parts = [
    ['mailmoat start (full path, spamd off)', of('full', 'mailmoat')],
    ['mailmoat smtp (accept)', of('accept', 'mailmoat')],
    ['Postfix relay', of('postfix', 'postfix')],
    ['Postfix accept', of('postfix-accept', 'postfix')],
    ['Haraka', of('haraka', 'haraka')],
  ] as const;
  return `CPU ms per message (2 KB, 50 sessions, own process tree only): ${parts.map(([name, v]) => `${name} ${v ?? 'n/a'}`).join(', ')}.`;
}

export function renderIssueTargets(targets: IssueTarget[], cpuLine: string): string[] {
  const L = [
    '**Targets** (issue 16: mailmoat against Postfix and spamd, same run; medians over rounds):',
    '',
    '| figure | today | target | measured | |',
    '|---|---|---|---|---|',
  ];
  for (const t of targets)
    L.push(`| ${t.figure} | ${t.today} | ${t.target} | ${t.measured} | ${t.pass === null ? 'not measured' : t.pass ? 'met' : '**missed**'} |`);
  L.push('', cpuLine);
  return L;
}
