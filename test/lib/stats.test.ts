import { describe, expect, it } from 'vitest';
import { Dist, dist, logProb, mean, percentile, round } from '../../src/lib/stats.ts';
import { pareto, renderChart } from '../../src/lib/svg-chart.ts';

describe('stats', () => {
  it('exact percentiles are nearest-rank over the values as given; 0 for none', () => {
    expect(percentile([], 50)).toBe(0);
    expect(percentile([3, 1, 2, 4], 50)).toBe(2);
    expect(percentile([3, 1, 2], 50)).toBe(2);
    expect(percentile([0.97, 1.02, 1.1, 0.99, 1.5], 100)).toBe(1.5);
    expect(mean([])).toBe(0);
    expect(mean([1, 2, 6])).toBe(3);
    expect(round(1.23456)).toBe(1.235);
    expect(round(1.23456, 1)).toBe(1.2);
  });

  it('Dist keeps 0 gaps, is exact to 0.1 %, never reports more than the largest value, and merges', () => {
    expect(new Dist().summary()).toMatchObject({ count: 0, p50: 0, max: 0 });
    const gaps = dist([0, 0, 0, 12.3456, 0, 0, 7.5, 0, 0, 0]);
    expect(gaps.at(50)).toBe(0);
    expect(gaps.at(100)).toBe(12.346);
    // The histogram's bucket for 12.3456 ms ends above it: the percentile is clamped to the maximum recorded.
    expect(gaps.at(99)).toBe(12.346);
    const many = dist(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(Math.abs(many.at(95) - 950) / 950).toBeLessThan(1e-3);
    expect(many.curve()[0]).toEqual([0, 1]);
    const merged = dist([1, 2]).add(dist([3]));
    expect(merged.summary()).toMatchObject({ count: 3, min: 1, max: 3 });
    expect(() => new Dist().record(Number.NaN)).toThrow();
  });

  it('logProb is log softmax, stable for large logits', () => {
    const row = Float32Array.from([1000, 1000]);
    expect(logProb(row, 0)).toBeCloseTo(Math.log(0.5), 6);
  });
});

describe('svg charts', () => {
  it('the scatter draws each series with its Pareto frontier, escaping text', () => {
    const points = [
      { x: 1, y: -1.2, label: 'a', series: 'greedy' },
      { x: 2, y: -1.0, label: 'b', series: 'greedy' },
      { x: 3, y: -1.1, label: 'c<d', series: 'greedy' }, // dominated by b: slower and worse
    ];
    expect(pareto(points).map((p) => p.label)).toEqual(['a', 'b']);
    const svg = renderChart({ kind: 'scatter', points, title: 'T & U', xLabel: 'x', yLabel: 'y' });
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('T &amp; U');
    expect(svg).toContain('c&lt;d');
    expect(svg.match(/<circle /g)).toHaveLength(4); // three points and the legend's dot
  });

  it('line and bar charts render, and say so when there is no data', () => {
    expect(renderChart({ kind: 'line', title: 'empty', xLabel: 'x', yLabel: 'y', x: 'linear', series: [] })).toContain('no data');
    const bar = renderChart({ kind: 'bar', title: 'b', yLabel: 'n', categories: ['one', 'two'], series: [{ name: 's', values: [1, 2] }] });
    expect(bar.match(/<rect x=/g)).toHaveLength(2 + 1); // two bars and the legend's swatch
  });
});
