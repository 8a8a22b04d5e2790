// Server-rendered SVG charts for the dashboard: no JavaScript, no chart library, and no inline
// style (the console's CSP forbids it; SVG presentation attributes are not styles). Labels come
// from mail (sender addresses, virus names): every piece of text goes through esc().

export const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, '');

export interface Category {
  key: string;
  label: string;
  color: string;
}

export const VERDICT_COLORS: Category[] = [
  { key: 'clean', label: 'clean', color: '#3f8f3f' },
  { key: 'spam', label: 'spam (tagged)', color: '#e0a800' },
  { key: 'high-spam', label: 'high spam', color: '#d9534f' },
  { key: 'virus', label: 'virus', color: '#8e44ad' },
  { key: 'phishing', label: 'phishing', color: '#e8710a' },
  { key: 'banned', label: 'banned attachment', color: '#a52a6a' },
  { key: 'blocked', label: 'blocked (list/rule)', color: '#5d4037' },
  { key: 'spoofed', label: 'spoofed', color: '#00838f' },
  { key: 'malformed', label: 'malformed', color: '#795548' },
  { key: 'unscannable', label: 'unscannable', color: '#6c757d' },
  { key: 'refused', label: 'refused at SMTP', color: '#2c7be5' },
  { key: 'other', label: 'not scanned yet', color: '#b0b7c3' },
];

const niceMax = (n: number): number => {
  if (n <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n)!;
};

/** Stacked bars, one per bucket (e.g. hour), with a legend. */
export function stackedBars(o: {
  title: string;
  buckets: { label: string; values: Record<string, number> }[];
  categories: Category[];
  width?: number;
  height?: number;
}): string {
  const width = o.width ?? 1000;
  const height = o.height ?? 300;
  const left = 40;
  const bottom = 40;
  const top = 52;
  const plotH = height - top - bottom;
  const plotW = width - left - 10;
  const totals = o.buckets.map((b) => o.categories.reduce((s, c) => s + (b.values[c.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const bw = plotW / Math.max(1, o.buckets.length);
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(o.title)}">`);
  parts.push(`<title>${esc(o.title)}</title>`);
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#555">${v}</text>`);
  }
  o.buckets.forEach((b, i) => {
    let acc = 0;
    const x = left + i * bw + 1;
    for (const c of o.categories) {
      const n = b.values[c.key] ?? 0;
      if (n <= 0) continue;
      const y0 = y(acc + n);
      const h = y(acc) - y0;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y0.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${c.color}"><title>${esc(`${b.label}: ${n} ${c.label}`)}</title></rect>`);
      acc += n;
    }
    if (o.buckets.length <= 24 || i % Math.ceil(o.buckets.length / 24) === 0) {
      parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${height - bottom + 14}" text-anchor="middle" font-size="10" fill="#555">${esc(b.label)}</text>`);
    }
  });
  let lx = left;
  let ly = 6;
  for (const c of o.categories) {
    const w = 24 + c.label.length * 6.2;
    if (lx + w > width - 10) {
      lx = left;
      ly += 18;
    }
    parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${c.color}"/><text x="${lx + 14}" y="${ly + 9}" font-size="11" fill="#333">${esc(c.label)}</text>`);
    lx += w;
  }
  parts.push('</svg>');
  return parts.join('');
}

/** Horizontal bars with labels (top senders, top viruses, queue sizes). */
export function horizontalBars(o: { title: string; items: { label: string; n: number }[]; color: string; width?: number; empty?: string }): string {
  const width = o.width ?? 460;
  const row = 22;
  const labelW = 230;
  const height = Math.max(1, o.items.length) * row + 30;
  const max = Math.max(1, ...o.items.map((i) => i.n));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(o.title)}"><title>${esc(o.title)}</title>`];
  if (o.items.length === 0) {
    parts.push(`<text x="8" y="24" font-size="12" fill="#777">${esc(o.empty ?? 'nothing yet')}</text>`);
  }
  o.items.forEach((it, i) => {
    const y = 10 + i * row;
    const label = it.label.length > 34 ? `${it.label.slice(0, 33)}…` : it.label;
    const w = ((width - labelW - 50) * it.n) / max;
    parts.push(`<text x="${labelW - 6}" y="${y + 14}" text-anchor="end" font-size="12" fill="#333">${esc(label)}<title>${esc(it.label)}</title></text>`);
    parts.push(`<rect x="${labelW}" y="${y + 3}" width="${Math.max(1, w).toFixed(1)}" height="${row - 8}" fill="${o.color}"/>`);
    parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 14}" font-size="12" fill="#333">${it.n}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
