/** Small numeric helpers for the benchmark reports (exact percentiles over the few thousand samples a run makes). */
import hdr from 'hdr-histogram-js';

export function percentiles(values: number[], ps = [50, 95, 99]): Record<string, number> {
  // Microsecond resolution over up to an hour: plenty for token gaps.
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const v of values) h.recordValue(Math.max(0, Math.round(v * 1000)));
  const out: Record<string, number> = {};
  for (const p of ps) out[`p${p}`] = values.length ? h.getValueAtPercentile(p) / 1000 : 0;
  h.destroy();
  return out;
}

/** log softmax(row)[id], computed stably: scoring passes of the offline benchmarks, never the serving path. */
export function logProb(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return row[id]! - max - Math.log(z);
}

export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export function table(rows: Record<string, string | number>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 3 : 1)) : v);
  const cells = rows.map((r) => cols.map((c) => fmt(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (xs: string[]) => `| ${xs.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cols), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
