/**
 * Charts in plain SVG, no dependencies, no scripts, no external assets: line and bar charts for the load-test
 * report (load-tests/lib/report.ts) and the scatter of the latency–accuracy frontier (bench:frontier). One entry
 * point, `renderChart`, takes a chart's data (`ChartSpec`), the form load-test results store their charts in.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

/** One point of a scatter chart; points of one `series` share a colour and a Pareto frontier. */
export interface Point {
  x: number;
  y: number;
  label: string;
  series: string;
}

export type ChartSpec =
  | {
      kind: 'line';
      title: string;
      xLabel: string;
      yLabel: string;
      /** 'percentile': x values are percentiles drawn on HdrHistogram's 1/(1−p) axis; 'log2': a log2 axis. */
      x: 'linear' | 'log2' | 'percentile';
      yLog?: boolean;
      series: Series[];
      /** Labels for x values (e.g. concurrency levels). */
      xTicks?: number[];
    }
  | {
      kind: 'bar';
      title: string;
      yLabel: string;
      categories: string[];
      series: { name: string; values: number[] }[];
      yLog?: boolean;
    }
  | {
      /** Points by series, each series' Pareto frontier drawn as a dashed line. */
      kind: 'scatter';
      title: string;
      xLabel: string;
      yLabel: string;
      points: Point[];
      width?: number;
      height?: number;
    };

export function renderChart(c: ChartSpec): string {
  return c.kind === 'line' ? lineChart(c) : c.kind === 'bar' ? barChart(c) : scatterChart(c);
}

const W = 660;
const H = 320;
const M = { left: 64, right: 16, top: 36, bottom: 74 };
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f', '#be185d'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10_000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, '');
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  return v.toPrecision(2);
}

/** Round numbers for the linear y axis. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) ticks.push(Math.round(v / step) * step);
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

/** HdrHistogram's percentile axis: x = log10(1 / (1 − p)), with 100 % drawn a little past 99.9 %. */
const PCT_MAX_X = 3.3;
function pctX(p: number): number {
  if (p >= 100) return PCT_MAX_X;
  return Math.min(PCT_MAX_X - 0.15, Math.log10(100 / (100 - p)));
}
const PCT_TICKS: [number, string][] = [
  [0, '0%'],
  [50, '50%'],
  [90, '90%'],
  [99, '99%'],
  [99.9, '99.9%'],
  [100, 'max'],
];

function frame(title: string, body: string, legend: { name: string; color: string }[], extraBottom = 0): string {
  const perRow = legend.some((l) => l.name.length > 20) ? 2 : 4;
  const items = legend
    .map((l, i) => {
      const col = i % perRow;
      const row = Math.floor(i / perRow);
      const x = M.left + col * (600 / perRow);
      const y = H - 30 + extraBottom + row * 14;
      return `<rect x="${x}" y="${y - 8}" width="10" height="10" fill="${l.color}"/><text x="${x + 14}" y="${y + 1}" class="lg">${esc(l.name.slice(0, 44))}</text>`;
    })
    .join('');
  const extra = Math.max(0, Math.ceil(legend.length / perRow) - 1) * 14 + extraBottom;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H + extra}" width="${W}" height="${H + extra}" role="img" aria-label="${esc(title)}">` +
    `<style>.t{font:600 13px sans-serif}.ax{font:11px sans-serif;fill:#444}.lg{font:11px sans-serif;fill:#222}.g{stroke:#e5e7eb}</style>` +
    `<rect width="100%" height="100%" fill="#fff"/><text x="${M.left}" y="20" class="t">${esc(title)}</text>${body}${items}</svg>`
  );
}

function lineChart(c: Extract<ChartSpec, { kind: 'line' }>): string {
  const series = c.series.filter((s) => s.points.length > 0);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  if (series.length === 0) return frame(c.title, `<text x="${M.left}" y="${M.top + 20}" class="ax">no data</text>`, []);
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  const tx = (x: number) => (c.x === 'percentile' ? pctX(x) : c.x === 'log2' ? Math.log2(Math.max(x, 1e-9)) : x);
  const x0 = c.x === 'percentile' ? 0 : Math.min(...xs.map(tx));
  const x1 = c.x === 'percentile' ? PCT_MAX_X : Math.max(...xs.map(tx));
  const span = x1 - x0 || 1;
  const X = (x: number) => M.left + ((tx(x) - x0) / span) * pw;
  let Y: (y: number) => number;
  let yTicks: number[];
  const positive = ys.filter((y) => y > 0);
  if (c.yLog && positive.length > 0) {
    const lo = Math.min(...positive);
    const hi = Math.max(...positive);
    yTicks = logTicks(lo, hi);
    const l0 = Math.log10(yTicks[0]!);
    const l1 = Math.log10(yTicks[yTicks.length - 1]!);
    Y = (y) => M.top + ph - ((Math.log10(Math.max(y, yTicks[0]!)) - l0) / (l1 - l0 || 1)) * ph;
  } else {
    yTicks = niceTicks(Math.max(...ys, 0));
    const top = yTicks[yTicks.length - 1]!;
    Y = (y) => M.top + ph - (y / (top || 1)) * ph;
  }
  let body = '';
  for (const t of yTicks)
    body += `<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(t)}" y2="${Y(t)}" class="g"/><text x="${M.left - 6}" y="${Y(t) + 4}" text-anchor="end" class="ax">${fmt(t)}</text>`;
  const xTicks: [number, string][] =
    c.x === 'percentile'
      ? PCT_TICKS
      : c.xTicks
        ? c.xTicks.map((v) => [v, fmt(v)])
        : c.x === 'linear'
          ? niceTicks(Math.max(...xs), 6)
              .filter((v) => v >= Math.min(...xs))
              .map((v) => [v, fmt(v)])
          : [...new Set(xs)]
              .sort((a, b) => a - b)
              .filter((_, i, a) => a.length <= 12 || i % Math.ceil(a.length / 12) === 0)
              .map((v) => [v, fmt(v)]);
  for (const [v, label] of xTicks)
    body += `<line x1="${X(v)}" x2="${X(v)}" y1="${M.top}" y2="${M.top + ph}" class="g"/><text x="${X(v)}" y="${M.top + ph + 16}" text-anchor="middle" class="ax">${label}</text>`;
  body += `<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#888"/><line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#888"/>`;
  body += `<text x="${M.left + pw / 2}" y="${M.top + ph + 32}" text-anchor="middle" class="ax">${esc(c.xLabel)}</text>`;
  body += `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" class="ax">${esc(c.yLabel)}</text>`;
  const legend = series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length]! }));
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    body += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`;
    if (s.points.length <= 40) {
      for (const [x, y] of s.points)
        body += `<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"><title>${esc(s.name)}: ${fmt(x)} → ${fmt(y)}</title></circle>`;
    }
  });
  return frame(c.title, body, legend);
}

function barChart(c: Extract<ChartSpec, { kind: 'bar' }>): string {
  const rotated = c.categories.length > 6;
  const pw = W - M.left - M.right - (rotated ? 70 : 0); // room for the last slanted label
  const ph = H - M.top - M.bottom;
  const values = c.series.flatMap((s) => s.values);
  const positive = values.filter((v) => v > 0);
  let Y: (y: number) => number;
  let yTicks: number[];
  if (c.yLog && positive.length > 0) {
    yTicks = logTicks(Math.min(...positive, 1), Math.max(...positive));
    const l1 = Math.log10(yTicks[yTicks.length - 1]!);
    Y = (y) => (y <= 0 ? M.top + ph : M.top + ph - ((Math.log10(Math.max(y, 1)) + 0.3) / (l1 + 0.3 || 1)) * ph);
  } else {
    yTicks = niceTicks(Math.max(...values, 1));
    const top = yTicks[yTicks.length - 1]!;
    Y = (y) => M.top + ph - (y / (top || 1)) * ph;
  }
  let body = '';
  for (const t of yTicks)
    body += `<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(t)}" y2="${Y(t)}" class="g"/><text x="${M.left - 6}" y="${Y(t) + 4}" text-anchor="end" class="ax">${fmt(t)}</text>`;
  const groupW = pw / Math.max(1, c.categories.length);
  const barW = Math.max(2, (groupW * 0.8) / Math.max(1, c.series.length));
  c.categories.forEach((cat, ci) => {
    const gx = M.left + ci * groupW + groupW * 0.1;
    c.series.forEach((s, si) => {
      const v = s.values[ci] ?? 0;
      const y = Y(v);
      body += `<rect x="${(gx + si * barW).toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(M.top + ph - y).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(cat)} · ${esc(s.name)}: ${v}</title></rect>`;
    });
    const label = cat.length > 18 ? `${cat.slice(0, 17)}…` : cat;
    const lx = M.left + ci * groupW + groupW / 2;
    body += rotated // long category lists: slanted labels (the frame makes room below)
      ? `<text transform="translate(${lx} ${M.top + ph + 10}) rotate(30)" class="ax">${esc(label)}</text>`
      : `<text x="${lx}" y="${M.top + ph + 16}" text-anchor="middle" class="ax">${esc(label)}</text>`;
  });
  body += `<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#888"/>`;
  body += `<text transform="translate(14 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" class="ax">${esc(c.yLabel)}</text>`;
  return frame(
    c.title,
    body,
    c.series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length]! })),
    rotated ? 56 : 0,
  );
}

/** Points not dominated by another of their series: nothing both faster (lower x) and at least as good (higher y). */
export function pareto(points: Point[]): Point[] {
  return points
    .filter((p) => !points.some((q) => q !== p && q.series === p.series && q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y)))
    .sort((a, b) => a.x - b.x);
}

/** The scatter's own colours and layout (those of docs/frontier.svg), not the report's. */
const SCATTER_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function scatterChart(c: Extract<ChartSpec, { kind: 'scatter' }>): string {
  const { points } = c;
  const W = c.width ?? 760,
    H = c.height ?? 460,
    m = { l: 70, r: 160, t: 40, b: 50 };
  const xs = points.map((p) => p.x),
    ys = points.map((p) => p.y);
  const [x0, x1] = [0, Math.max(...xs) * 1.08];
  const pad = (Math.max(...ys) - Math.min(...ys)) * 0.1 || 0.1;
  const [y0, y1] = [Math.min(...ys) - pad, Math.max(...ys) + pad];
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const series = [...new Set(points.map((p) => p.series))];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="20" text-anchor="middle" font-size="14">${esc(c.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#333"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const xv = x0 + ((x1 - x0) * i) / 5,
      yv = y0 + ((y1 - y0) * i) / 5;
    out.push(`<text x="${X(xv)}" y="${H - m.b + 15}" text-anchor="middle">${xv.toFixed(xv < 10 ? 1 : 0)}</text>`);
    out.push(`<text x="${m.l - 6}" y="${Y(yv) + 4}" text-anchor="end">${yv.toFixed(2)}</text>`);
    out.push(`<line x1="${m.l}" y1="${Y(yv)}" x2="${W - m.r}" y2="${Y(yv)}" stroke="#eee"/>`);
  }
  series.forEach((s, i) => {
    const color = SCATTER_COLORS[i % SCATTER_COLORS.length]!;
    const front = pareto(points.filter((p) => p.series === s));
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-dasharray="4 3" points="${front.map((p) => `${X(p.x)},${Y(p.y)}`).join(' ')}"/>`,
    );
    for (const p of points.filter((q) => q.series === s)) {
      out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="4" fill="${color}"/>`);
      out.push(`<text x="${X(p.x) + 6}" y="${Y(p.y) - 5}" fill="${color}">${esc(p.label)}</text>`);
    }
    out.push(
      `<circle cx="${W - m.r + 15}" cy="${m.t + 15 + i * 18}" r="4" fill="${color}"/><text x="${W - m.r + 24}" y="${m.t + 19 + i * 18}">${esc(s)}</text>`,
    );
  });
  out.push(`<text x="${W - m.r + 10}" y="${m.t + 30 + series.length * 18}" fill="#555">dashed: Pareto frontier</text>`, '</svg>');
  return out.join('\n');
}
