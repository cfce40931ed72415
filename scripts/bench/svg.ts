/** A small scatter chart in plain SVG (no dependencies): points by series, the Pareto frontier drawn as a line. */
export interface Point { x: number; y: number; label: string; series: string }

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** Points not dominated by another of their series: nothing both faster (lower x) and at least as good (higher y). */
export function pareto(points: Point[]): Point[] {
  return points
    .filter((p) => !points.some((q) => q !== p && q.series === p.series && q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y)))
    .sort((a, b) => a.x - b.x);
}

export function scatter(points: Point[], opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): string {
  const W = opts.width ?? 760, H = opts.height ?? 460, m = { l: 70, r: 160, t: 40, b: 50 };
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = [0, Math.max(...xs) * 1.08];
  const pad = (Math.max(...ys) - Math.min(...ys)) * 0.1 || 0.1;
  const [y0, y1] = [Math.min(...ys) - pad, Math.max(...ys) + pad];
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const series = [...new Set(points.map((p) => p.series))];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="20" text-anchor="middle" font-size="14">${esc(opts.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#333"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const xv = x0 + ((x1 - x0) * i) / 5, yv = y0 + ((y1 - y0) * i) / 5;
    out.push(`<text x="${X(xv)}" y="${H - m.b + 15}" text-anchor="middle">${xv.toFixed(xv < 10 ? 1 : 0)}</text>`);
    out.push(`<text x="${m.l - 6}" y="${Y(yv) + 4}" text-anchor="end">${yv.toFixed(2)}</text>`);
    out.push(`<line x1="${m.l}" y1="${Y(yv)}" x2="${W - m.r}" y2="${Y(yv)}" stroke="#eee"/>`);
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const front = pareto(points.filter((p) => p.series === s));
    out.push(`<polyline fill="none" stroke="${c}" stroke-dasharray="4 3" points="${front.map((p) => `${X(p.x)},${Y(p.y)}`).join(' ')}"/>`);
    for (const p of points.filter((q) => q.series === s)) {
      out.push(`<circle cx="${X(p.x)}" cy="${Y(p.y)}" r="4" fill="${c}"/>`);
      out.push(`<text x="${X(p.x) + 6}" y="${Y(p.y) - 5}" fill="${c}">${esc(p.label)}</text>`);
    }
    out.push(`<circle cx="${W - m.r + 15}" cy="${m.t + 15 + i * 18}" r="4" fill="${c}"/><text x="${W - m.r + 24}" y="${m.t + 19 + i * 18}">${esc(s)}</text>`);
  });
  out.push(`<text x="${W - m.r + 10}" y="${m.t + 30 + series.length * 18}" fill="#555">dashed: Pareto frontier</text>`, '</svg>');
  return out.join('\n');
}
