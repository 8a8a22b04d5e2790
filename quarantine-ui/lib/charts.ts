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

/**
 * Stacked bars, one per bucket (e.g. hour), with a legend. Drawn twice: a wide picture, and a
 * narrow one with larger text and fewer bucket labels that console.css shows instead on a phone,
 * where the wide one scaled down to the screen would have text of 3-4 px.
 */
export function stackedBars(o: {
  title: string;
  buckets: { label: string; values: Record<string, number> }[];
  categories: Category[];
  width?: number;
  height?: number;
}): string {
  return (
    drawStackedBars(o, { cls: 'wide', width: o.width ?? 1000, height: o.height ?? 300, font: 11, maxLabels: 24 }) +
    drawStackedBars(o, { cls: 'narrow', width: 360, height: 240, font: 12, maxLabels: 8 })
  );
}

function drawStackedBars(
  o: { title: string; buckets: { label: string; values: Record<string, number> }[]; categories: Category[] },
  size: { cls: string; width: number; height: number; font: number; maxLabels: number },
): string {
  const { width, height, font } = size;
  const left = 4 + font * 3.3;
  const bottom = 40;
  const right = 10;
  // the legend wraps onto as many rows as it needs; the plot starts below it
  const legend: { c: Category; x: number; y: number }[] = [];
  let lx = left;
  let ly = 6;
  for (const c of o.categories) {
    const w = font * 2.2 + c.label.length * font * 0.57;
    if (lx + w > width - right && lx > left) {
      lx = left;
      ly += font + 7;
    }
    legend.push({ c, x: lx, y: ly });
    lx += w;
  }
  const top = ly + font + 30;
  const plotH = height - top - bottom;
  const plotW = width - left - right;
  const totals = o.buckets.map((b) => o.categories.reduce((s, c) => s + (b.values[c.key] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const bw = plotW / Math.max(1, o.buckets.length);
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${size.cls}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(o.title)}">`,
  );
  parts.push(`<title>${esc(o.title)}</title>`);
  for (const f of [0, 0.5, 1]) {
    const v = Math.round(max * f);
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end" font-size="${font}" fill="#555">${v}</text>`);
  }
  const labelEvery = Math.ceil(o.buckets.length / size.maxLabels);
  o.buckets.forEach((b, i) => {
    let acc = 0;
    const x = left + i * bw + 1;
    for (const c of o.categories) {
      const n = b.values[c.key] ?? 0;
      if (n <= 0) continue;
      const y0 = y(acc + n);
      const h = y(acc) - y0;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y0.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${c.color}"><title>${esc(`${b.label}: ${n} ${c.label}`)}</title></rect>`,
      );
      acc += n;
    }
    if (i % labelEvery === 0) {
      parts.push(
        `<text x="${(x + bw / 2).toFixed(1)}" y="${height - bottom + 14}" text-anchor="middle" font-size="${font - 1}" fill="#555">${esc(b.label)}</text>`,
      );
    }
  });
  for (const { c, x, y: ty } of legend) {
    parts.push(
      `<rect x="${x}" y="${ty}" width="${font - 1}" height="${font - 1}" fill="${c.color}"/><text x="${x + font + 3}" y="${ty + font - 2}" font-size="${font}" fill="#333">${esc(c.label)}</text>`,
    );
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
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(o.title)}"><title>${esc(o.title)}</title>`,
  ];
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
