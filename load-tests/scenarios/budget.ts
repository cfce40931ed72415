/**
 * budget: mixed latency budgets routed by mode "auto" (issue 7), at concurrency 1, 4 and 16.
 *
 * Budgets are set from this machine, at each concurrency, by a calibration run of the same mix with the modes
 * fixed (a third each of target, speculative, draft): "tight" = 1.25 × draft's measured mean ITL, "medium" =
 * 1.25 × speculative's, "none" = no budget. Then the same load runs with mode "auto".
 * Bars: ≥ 95 % of budgeted requests meet their budget, measured client-side (mean ITL = (e2e − TTFT) / (tokens − 1));
 * no request is served by a less accurate mode than needed: a more accurate mode whose calibrated mean ITL was
 * within the request's budget counts as a violation; requests without a budget are served by the target.
 */
import { bar, type Outcome, type Scenario } from '../lib/result.ts';
import { fixed } from '../lib/requests.ts';
import { type StreamResult, WsConn } from '../lib/ws.ts';

const MODES = ['target', 'speculative', 'draft'] as const;
type ServedMode = (typeof MODES)[number];
const CLASSES = ['tight', 'medium', 'none'] as const;
type BudgetClass = (typeof CLASSES)[number];
const MEET = 0.95;
const SLACK = 1.25;

function plan(quick: boolean) {
  return quick ? { levels: [1, 4], perClient: 6, tokens: 16 } : { levels: [1, 4, 16], perClient: 12, tokens: 24 };
}

const meanItl = (r: StreamResult) => (r.e2eMs !== null && r.ttftMs !== null && r.tokens > 1 ? (r.e2eMs - r.ttftMs) / (r.tokens - 1) : NaN);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** c clients, each running `perClient` generations back to back; request i of a client gets params(i). */
async function closedLoop(url: string, c: number, perClient: number, params: (client: number, i: number) => Record<string, unknown>, tag: string) {
  const results: { r: StreamResult; client: number; i: number }[] = [];
  await Promise.all(Array.from({ length: c }, async (_, client) => {
    const conn = await WsConn.open(url);
    for (let i = 0; i < perClient; i++) {
      const r = await conn.generate(`${tag}-${client}-${i}`, params(client, i) as never, { timeoutMs: 120_000 });
      results.push({ r, client, i });
    }
    await conn.close();
  }));
  return results;
}

export const budget: Scenario = {
  name: 'budget',
  summary: `mixed latency budgets with mode "auto" at concurrency 1/4/16: ≥ ${MEET * 100} % meet theirs, none served less accurately than needed`,
  serverFlags: () => ['--max-running', '16', '--max-queue', '32'],
  async run(ctx): Promise<Outcome> {
    const { server, quick, log } = ctx;
    const p = plan(quick);
    const rows: Record<string, string | number>[] = [];
    let budgeted = 0, met = 0, tooInaccurate = 0, unbudgetedNotTarget = 0, errors = 0;
    const notes: string[] = [];
    for (const c of p.levels) {
      // Calibration: the same mix with fixed modes, so each mode's latency is measured under this load.
      const cal = await closedLoop(server.wsUrl, c, p.perClient, (client, i) => fixed(client * 100 + i, p.tokens, { mode: MODES[(client + i) % 3] }), `cal${c}`);
      const itl: Record<ServedMode, number> = { target: 0, speculative: 0, draft: 0 };
      for (const m of MODES) itl[m] = avg(cal.filter(({ client, i }) => MODES[(client + i) % 3] === m).map(({ r }) => meanItl(r)).filter(Number.isFinite));
      const budgets: Record<BudgetClass, { itl_ms: number } | null> = { tight: { itl_ms: SLACK * itl.draft }, medium: { itl_ms: SLACK * itl.speculative }, none: null };
      log(`c=${c}: calibrated mean ITL target ${itl.target.toFixed(2)} ms, speculative ${itl.speculative.toFixed(2)} ms, draft ${itl.draft.toFixed(2)} ms`);

      const runs = await closedLoop(server.wsUrl, c, p.perClient, (client, i) => {
        const b = budgets[CLASSES[(client + i) % 3]!];
        return fixed(client * 100 + i, p.tokens, { mode: 'auto', ...(b ? { latency_budget: b } : {}) });
      }, `auto${c}`);
      const served: Record<string, number> = {};
      let levelMet = 0, levelBudgeted = 0;
      for (const { r, client, i } of runs) {
        const cls = CLASSES[(client + i) % 3]!;
        const route = (r.final?.['route'] ?? null) as { mode: ServedMode; budget_missed: boolean } | null;
        if (r.status !== 'done' || !route) { errors++; continue; }
        served[`${cls}→${route.mode}`] = (served[`${cls}→${route.mode}`] ?? 0) + 1;
        const b = budgets[cls];
        if (!b) {
          if (route.mode !== 'target') unbudgetedNotTarget++;
          continue;
        }
        levelBudgeted++;
        if (meanItl(r) <= b.itl_ms) levelMet++;
        const better = MODES.slice(0, MODES.indexOf(route.mode)).filter((m) => itl[m] <= b.itl_ms);
        if (better.length > 0) tooInaccurate++;
      }
      budgeted += levelBudgeted;
      met += levelMet;
      rows.push({ concurrency: c, 'target ITL': itl.target, 'spec ITL': itl.speculative, 'draft ITL': itl.draft,
        'tight ≤ ms': budgets.tight!.itl_ms, 'medium ≤ ms': budgets.medium!.itl_ms, 'met %': (100 * levelMet) / Math.max(1, levelBudgeted),
        routes: Object.entries(served).map(([k, v]) => `${k} ${v}`).join(', ') });
      notes.push(`c=${c}: ${Object.entries(served).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
    }
    return {
      bars: [
        bar('budgeted requests meeting their budget (client-side mean ITL)', (100 * met) / Math.max(1, budgeted), '>=', MEET * 100, '%'),
        bar('requests served by a less accurate mode than a measured-feasible one', tooInaccurate, '==', 0),
        bar('requests without a budget not served by the target', unbudgetedNotTarget, '==', 0),
        bar('requests that failed or carried no route', errors, '==', 0),
      ],
      figures: { levels: p.levels, per_client: p.perClient, max_tokens: p.tokens, budgeted, met, too_inaccurate: tooInaccurate, rows },
      tables: [{ title: 'Budget routing (mode "auto")', rows }],
      charts: [],
      notes: [
        `Budgets per concurrency from a calibration run of the same mix with fixed modes: tight = ${SLACK} × draft mean ITL, medium = ${SLACK} × speculative mean ITL, none = no budget.`,
        ...notes,
      ],
    };
  },
};
