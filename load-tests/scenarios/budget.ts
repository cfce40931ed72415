/**
 * budget: mixed latency budgets routed by mode "auto" (issue 7), at concurrency 1, 4 and 16.
 *
 * Budgets are set from this machine, at each concurrency, by a calibration run of the same mix with the modes
 * fixed (a third each of target, speculative, draft): "tight" = 1.25 × draft's measured mean ITL, "medium" =
 * 1.25 × speculative's, "none" = no budget. Then the same load runs with mode "auto".
 * Bars: ≥ 95 % of budgeted requests meet their budget, measured client-side (mean ITL = (e2e − TTFT) / (tokens − 1));
 * no request is served by a less accurate mode than needed, checked against the router's own logged predictions
 * (a more accurate mode predicted to fit, within the router's headroom, is a violation) and against the measured
 * latencies (the predictions must not be pessimistic: for every mode served, the median of measured ÷ predicted
 * ITL is ≥ 0.8, so a more accurate mode turned down as too slow would have been too slow); requests without a
 * budget are served by the target. Whether a mode fits depends on what else is running, not on the calibration
 * mix, so the calibration only sets the budgets.
 */
import { HEADROOM } from '../../src/engine/scheduler/router.ts';
import { mean, percentile } from '../../src/lib/stats.ts';
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
const NOT_PESSIMISTIC = 0.8;

/** c clients, each running `perClient` generations back to back; request i of a client gets params(i). */
async function closedLoop(
  url: string,
  c: number,
  perClient: number,
  params: (client: number, i: number) => Record<string, unknown>,
  tag: string,
) {
  const results: { r: StreamResult; client: number; i: number }[] = [];
  await Promise.all(
    Array.from({ length: c }, async (_, client) => {
      const conn = await WsConn.open(url);
      for (let i = 0; i < perClient; i++) {
        const r = await conn.generate(`${tag}-${client}-${i}`, params(client, i) as never, { timeoutMs: 120_000 });
        results.push({ r, client, i });
      }
      await conn.close();
    }),
  );
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
    let budgeted = 0,
      met = 0,
      tooInaccurate = 0,
      unbudgetedNotTarget = 0,
      errors = 0;
    const measuredOverPredicted: Record<ServedMode, number[]> = { target: [], speculative: [], draft: [] };
    const misses: { c: number; budget: string; mode: ServedMode; budget_ms: number; measured_ms: number; predicted_ms: number }[] = [];
    const notes: string[] = [];
    for (const c of p.levels) {
      // Calibration: the same mix with fixed modes, so each mode's latency is measured under this load.
      const cal = await closedLoop(
        server.wsUrl,
        c,
        p.perClient,
        (client, i) => fixed(client * 100 + i, p.tokens, { mode: MODES[(client + i) % 3] }),
        `cal${c}`,
      );
      const itl: Record<ServedMode, number> = { target: 0, speculative: 0, draft: 0 };
      for (const m of MODES)
        itl[m] = mean(
          cal
            .filter(({ client, i }) => MODES[(client + i) % 3] === m)
            .map(({ r }) => meanItl(r))
            .filter(Number.isFinite),
        );
      const budgets: Record<BudgetClass, { itl_ms: number } | null> = {
        tight: { itl_ms: SLACK * itl.draft },
        medium: { itl_ms: SLACK * itl.speculative },
        none: null,
      };
      log(
        `c=${c}: calibrated mean ITL target ${itl.target.toFixed(2)} ms, speculative ${itl.speculative.toFixed(2)} ms, draft ${itl.draft.toFixed(2)} ms`,
      );

      const runs = await closedLoop(
        server.wsUrl,
        c,
        p.perClient,
        (client, i) => {
          const b = budgets[CLASSES[(client + i) % 3]!];
          return fixed(client * 100 + i, p.tokens, { mode: 'auto', ...(b ? { latency_budget: b } : {}) });
        },
        `auto${c}`,
      );
      const served: Record<string, number> = {};
      let levelMet = 0,
        levelBudgeted = 0;
      for (const { r, client, i } of runs) {
        const cls = CLASSES[(client + i) % 3]!;
        const route = (r.final?.['route'] ?? null) as {
          mode: ServedMode;
          budget_missed: boolean;
          predicted: Record<ServedMode, { itl_ms: number }>;
        } | null;
        if (r.status !== 'done' || !route) {
          errors++;
          continue;
        }
        served[`${cls}→${route.mode}`] = (served[`${cls}→${route.mode}`] ?? 0) + 1;
        const b = budgets[cls];
        const predictedItl = route.predicted[route.mode]?.itl_ms;
        if (predictedItl && Number.isFinite(meanItl(r))) measuredOverPredicted[route.mode].push(meanItl(r) / predictedItl);
        if (!b) {
          if (route.mode !== 'target') unbudgetedNotTarget++;
          continue;
        }
        levelBudgeted++;
        if (meanItl(r) <= b.itl_ms) levelMet++;
        else
          misses.push({
            c,
            budget: cls,
            mode: route.mode,
            budget_ms: b.itl_ms,
            measured_ms: meanItl(r),
            predicted_ms: predictedItl ?? NaN,
          });
        const better = MODES.slice(0, MODES.indexOf(route.mode)).filter(
          (m) => (route.predicted[m]?.itl_ms ?? Infinity) <= HEADROOM * b.itl_ms,
        );
        if (better.length > 0) tooInaccurate++;
      }
      budgeted += levelBudgeted;
      met += levelMet;
      rows.push({
        concurrency: c,
        'target ITL': itl.target,
        'spec ITL': itl.speculative,
        'draft ITL': itl.draft,
        'tight ≤ ms': budgets.tight!.itl_ms,
        'medium ≤ ms': budgets.medium!.itl_ms,
        'met %': (100 * levelMet) / Math.max(1, levelBudgeted),
        routes: Object.entries(served)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      });
      notes.push(
        `c=${c}: ${Object.entries(served)
          .map(([k, v]) => `${k} ×${v}`)
          .join(', ')}`,
      );
    }
    const ratios = Object.fromEntries(
      MODES.filter((m) => measuredOverPredicted[m].length > 0).map((m) => [m, percentile(measuredOverPredicted[m], 50)]),
    );
    log(
      `median measured ÷ predicted ITL: ${Object.entries(ratios)
        .map(([m, v]) => `${m} ${v.toFixed(2)}`)
        .join(', ')}`,
    );
    return {
      bars: [
        bar('budgeted requests meeting their budget (client-side mean ITL)', (100 * met) / Math.max(1, budgeted), '>=', MEET * 100, '%'),
        bar('requests served by a less accurate mode than one the router predicted to fit', tooInaccurate, '==', 0),
        bar(
          'lowest median measured ÷ predicted ITL over the modes served (predictions not pessimistic)',
          Math.min(...Object.values(ratios)),
          '>=',
          NOT_PESSIMISTIC,
        ),
        bar('requests without a budget not served by the target', unbudgetedNotTarget, '==', 0),
        bar('requests that failed or carried no route', errors, '==', 0),
      ],
      figures: {
        levels: p.levels,
        per_client: p.perClient,
        max_tokens: p.tokens,
        budgeted,
        met,
        too_inaccurate: tooInaccurate,
        measured_over_predicted_itl: ratios,
        misses,
        rows,
      },
      tables: [{ title: 'Budget routing (mode "auto")', rows }],
      charts: [],
      notes: [
        `Budgets per concurrency from a calibration run of the same mix with fixed modes: tight = ${SLACK} × draft mean ITL, medium = ${SLACK} × speculative mean ITL, none = no budget.`,
        ...notes,
      ],
    };
  },
};
