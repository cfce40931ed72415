/**
 * The quick version of every load-test scenario (load-tests/), against the real server started as a child
 * process on the bundled models — or SPECD_TEST_TARGET / SPECD_TEST_DRAFT while those are being trained.
 * Each scenario's bars are asserted as they are in `npm run load -- <scenario> --quick`, except latency bars
 * (Bar.timing: speed targets, which `npm run load` enforces), which are reported; nothing is written to
 * load-tests/results.
 */
import { expect, it } from 'vitest';
import { execute } from '../../load-tests/lib/execute.ts';
import { findModels, NO_MODELS_MESSAGE } from '../../load-tests/lib/models.ts';
import { barText } from '../../load-tests/lib/report.ts';
import type { Bar } from '../../load-tests/lib/result.ts';
import { SCENARIOS } from '../../load-tests/scenarios/index.ts';
import { findNginx, NGINX_MISSING } from '../../scripts/cluster/nginx-config.ts';
import { modelsSwitchedOff } from '../helpers/models.ts';
import { describeUnless } from '../helpers/skip.ts';

// The load kit finds its models as `npm run load` does (bundled pair first, then SPECD_TEST_TARGET / _DRAFT).
const models = modelsSwitchedOff ? null : findModels();

describeUnless(modelsSwitchedOff ?? (models ? null : NO_MODELS_MESSAGE), 'load tests, quick versions (real server, real models)', () => {
  // budget's bars are latency comparisons between modes measured seconds apart: on a shared CI machine that is
  // noise, so it runs from `npm run load -- budget` (and its committed report), not in `npm test`.
  for (const scenario of SCENARIOS.filter((s) => s.name !== 'budget')) {
    it(`${scenario.name}: ${scenario.summary}`, async (ctx) => {
      // cluster needs nginx (.ci/run installs Debian's): without it the scenario cannot run, and says why.
      if (scenario.name === 'cluster' && !findNginx()) {
        console.warn(`cluster (quick) skipped: ${NGINX_MISSING}`);
        return ctx.skip();
      }
      const result = await execute(scenario, { quick: true, models });
      expect(result.skipped, result.skipped).toBeUndefined();
      const text = (b: Bar) => `${b.name}: ${barText(b)}${b.detail ? ` (${b.detail})` : ''}`;
      // Latency bars are speed targets: `npm run load` enforces them; here, beside other suites, they are reported.
      const slow = result.bars.filter((b) => !b.pass && b.timing).map(text);
      if (slow.length > 0) console.warn(`${scenario.name} (quick): latency bars missed on this busy machine:\n  ${slow.join('\n  ')}`);
      const missed = result.bars.filter((b) => !b.pass && !b.timing).map(text);
      expect(missed, [...result.notes, ...result.server.errorLogs].join('\n')).toEqual([]);
      expect(result.bars.length).toBeGreaterThan(0);
    }, 300_000);
  }
});
