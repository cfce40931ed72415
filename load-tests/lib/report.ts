/**
 * Turns the result files of a folder (results/load/, or load-tests/results/ with --save) into report.html
 * (self-contained: inline CSS and SVG, no scripts, no CDN), summary.md, and the "Latest results" section of
 * load-tests/README.md (between markers).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { ROOT } from './models.ts';
import type { Bar, ScenarioResult, Table } from './result.ts';
import { esc, renderChart } from '../../src/lib/svg-chart.ts';

export const README_BEGIN = '<!-- load-results:begin (written by load-tests/run.ts) -->';
export const README_END = '<!-- load-results:end -->';

/** Every result file in `dir`, in scenario order (`order`), the full run before the quick one. */
export function loadResults(dir: string, order: readonly string[]): ScenarioResult[] {
  if (!existsSync(dir)) return [];
  const results = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ScenarioResult)
    .filter((r) => typeof r.scenario === 'string' && Array.isArray(r.bars));
  const rank = (r: ScenarioResult) => (order.indexOf(r.scenario) + 1 || 99) * 2 + (r.quick ? 1 : 0);
  return results.sort((a, b) => rank(a) - rank(b));
}

export function resultFileName(scenario: string, quick: boolean): string {
  return `${scenario}${quick ? '.quick' : ''}.json`;
}

const num = (v: number) => (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3).replace(/\.?0+$/, ''));
const cell = (v: string | number) => (typeof v === 'number' ? num(v) : v);
export const barText = (b: Bar) => `${num(b.actual)}${b.unit && b.unit !== 'fraction' ? ` ${b.unit}` : ''} ${b.op} ${num(b.limit)}`;
const status = (r: ScenarioResult) => (r.skipped ? 'SKIPPED' : r.pass ? 'PASS' : 'FAIL');
const runKind = (r: ScenarioResult) => (r.quick ? 'quick' : 'full');
const shortPath = (p: string) => (isAbsolute(p) && p.startsWith(ROOT) ? relative(ROOT, p) : p);
const modelsText = (r: ScenarioResult) =>
  r.server.models
    ? `${shortPath(r.server.models.target)} + ${r.server.models.draft ? shortPath(r.server.models.draft) : 'no draft'}`
    : 'external server (--url)';

/** One result per scenario for the summary: the full run when there is one, else the quick run. */
export function latestPerScenario(results: ScenarioResult[]): ScenarioResult[] {
  return results.filter((r) => !r.quick || !results.some((o) => o.scenario === r.scenario && !o.quick));
}

function htmlTable(t: Table): string {
  const cols = Object.keys(t.rows[0] ?? {});
  if (cols.length === 0) return '';
  return (
    `<h4>${esc(t.title)}</h4><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>` +
    t.rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(String(cell(r[c] ?? '')))}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

export function renderHtml(results: ScenarioResult[], generatedAt = new Date(), sourceDir = 'load-tests/results'): string {
  const summary = results
    .map(
      (r) =>
        `<tr class="${status(r).toLowerCase()}"><td><a href="#${r.scenario}-${runKind(r)}">${esc(r.scenario)}</a></td><td>${runKind(r)}</td>` +
        `<td>${status(r)}</td><td>${esc(r.startedAt.slice(0, 16).replace('T', ' '))}</td><td>${r.durationS} s</td>` +
        `<td>${r.skipped ? esc(r.skipped) : r.bars.map((b) => `<span class="${b.pass ? 'ok' : 'bad'}">${b.pass ? '✓' : '✗'}</span> ${esc(b.name)}: ${esc(barText(b))}`).join('<br>')}</td></tr>`,
    )
    .join('');
  const sections = results
    .map((r) => {
      const bars = r.bars
        .map(
          (b) =>
            `<tr class="${b.pass ? 'pass' : 'fail'}"><td>${b.pass ? '✓' : '✗'}</td><td>${esc(b.name)}${b.detail ? `<div class="d">${esc(b.detail)}</div>` : ''}</td>` +
            `<td>${esc(num(b.actual))}${b.unit ? ` ${esc(b.unit)}` : ''}</td><td>${esc(b.op)} ${esc(num(b.limit))}</td></tr>`,
        )
        .join('');
      return (
        `<section id="${r.scenario}-${runKind(r)}"><h2>${esc(r.scenario)} <small>(${runKind(r)}) — ${status(r)}</small></h2>` +
        `<p class="meta">${esc(r.startedAt)} · ${r.durationS} s · commit ${esc(r.env.commit ?? '?')} · node ${esc(r.env.node)} · ${r.env.cpus} × ${esc(r.env.cpuModel)}${r.env.l3 ? `, L3 ${esc(r.env.l3)}` : ''} · load ${r.env.loadavg.join(' ')}<br>` +
        `models: ${esc(modelsText(r))} · server flags: <code>${esc((r.server.flags ?? []).filter((f, i, a) => !['--target', '--draft'].includes(a[i - 1] ?? '') && !['--target', '--draft'].includes(f)).join(' ') || '(external)')}</code></p>` +
        (r.skipped
          ? `<p>Skipped: ${esc(r.skipped)}</p>`
          : `<table class="bars"><thead><tr><th></th><th>bar</th><th>measured</th><th>limit</th></tr></thead><tbody>${bars}</tbody></table>`) +
        r.tables.map(htmlTable).join('') +
        `<div class="charts">${r.charts.map((c) => `<figure>${renderChart(c)}</figure>`).join('')}</div>` +
        (r.notes.length ? `<ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '') +
        (r.server.errorLogs.length
          ? `<details><summary>server error logs (${r.server.errorLogs.length})</summary><pre>${esc(r.server.errorLogs.join('\n'))}</pre></details>`
          : '') +
        '</section>'
      );
    })
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>specd load tests</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#111}
h1{margin-bottom:4px}h2{border-top:2px solid #ddd;padding-top:16px;margin-top:32px}h2 small{font-weight:normal;color:#555}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f6f6f6}
tr.pass td:first-child,.ok{color:#15803d}tr.fail td,.bad{color:#b91c1c}tr.skipped td{color:#777}.d{color:#666;font-size:12px}
.meta{color:#555;font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee}code{font-size:12px}
.notes{color:#444;font-size:13px}pre{white-space:pre-wrap;font-size:11px}
</style></head><body>
<h1>specd load tests</h1><p class="meta">Generated ${esc(generatedAt.toISOString())} from ${esc(sourceDir)}/*.json by <code>npm run load</code>.</p>
<table><thead><tr><th>scenario</th><th>run</th><th>result</th><th>started (UTC)</th><th>took</th><th>bars</th></tr></thead><tbody>${summary}</tbody></table>
${sections}
</body></html>
`;
}

/** The markdown summary (summary.md and the README section): one row per result, one line per bar. */
export function renderSummary(all: ScenarioResult[], reportHref = 'results/report.html'): string {
  const results = latestPerScenario(all);
  if (results.length === 0) return '_No results yet: run `npm run load -- all`._\n';
  const lines = [
    '| scenario | run | result | date (UTC) | models | bars |',
    '|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${runKind(r)} | **${status(r)}** | ${r.startedAt.slice(0, 16).replace('T', ' ')} | ${modelsText(r)} | ` +
        (r.skipped
          ? r.skipped
          : r.bars
              .map((b) => `${b.pass ? '✓' : '✗'} ${b.name}: ${barText(b)}`)
              .join('<br>')
              .replace(/\|/g, '\\|')) +
        ' |',
    ),
    '',
    `One row per scenario: its full run, or the quick run when no full run was recorded. Machine: ${results[0]!.env.cpus} × ${results[0]!.env.cpuModel}, ` +
      `node ${results[0]!.env.node}. Charts, tables and every figure: [report.html](${reportHref}).`,
    '',
  ];
  return lines.join('\n');
}

/** Rewrites the marked section of README.md (no-op if the markers are missing). */
export function updateReadme(readmePath: string, summary: string): boolean {
  if (!existsSync(readmePath)) return false;
  const text = readFileSync(readmePath, 'utf8');
  const a = text.indexOf(README_BEGIN);
  const b = text.indexOf(README_END);
  if (a < 0 || b < a) return false;
  writeFileSync(readmePath, `${text.slice(0, a + README_BEGIN.length)}\n${summary}${text.slice(b)}`);
  return true;
}
