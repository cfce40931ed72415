/**
 * `npm run load -- <scenario|all> [--quick] [--save] [--url URL] [--target DIR --draft DIR] [-- server flags…]`
 *
 * Starts the real server (one per scenario, with the flags the scenario needs) unless --url is given, drives it,
 * writes results/load/<scenario>[.quick].json (git-ignored), then report.html and summary.md from every result file
 * there. With --save the results go to the committed load-tests/results/ instead, and the "Latest results" section
 * of load-tests/README.md is rewritten. Exit code: 0 when every bar passed, 1 when one was missed (or a scenario
 * failed to run), 2 for a usage error or no models.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execute } from './lib/execute.ts';
import { findModels, NO_MODELS_MESSAGE, ROOT } from './lib/models.ts';
import { barText, loadResults, renderHtml, renderSummary, resultFileName, updateReadme } from './lib/report.ts';
import type { ScenarioResult } from './lib/result.ts';
import { SCENARIOS, scenarioByName } from './scenarios/index.ts';

const HELP = `Usage: npm run load -- <scenario|all> [options] [-- server flags]

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.summary}`).join('\n')}
  all          every scenario above, in this order

Options:
  --quick              the small version (seconds each; the same bars)
  --url URL            drive a server that is already running on 127.0.0.1 instead of starting one
                       (overload then needs --max-running N --max-queue N as that server has them; shutdown is skipped)
  --target DIR         target model folder (default: the bundled model, else $SPECD_TEST_TARGET)
  --draft DIR          draft model folder, or "none" (default: the bundled draft, else $SPECD_TEST_DRAFT)
  --save               write the results to the committed load-tests/results/ and rewrite the "Latest results"
                       section of load-tests/README.md (default: results/load/, which git ignores)
  --out DIR            write the results to DIR instead
  --no-readme          with --save: leave load-tests/README.md as it is
  -h, --help           this text
  -- FLAGS             everything after -- is passed to every server the runner starts (e.g. -- --threads 1)
`;

function usage(message: string): never {
  process.stderr.write(`load: ${message}\n\n${HELP}`);
  process.exit(2);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const dd = argv.indexOf('--');
  const own = dd >= 0 ? argv.slice(0, dd) : argv;
  const serverFlags = dd >= 0 ? argv.slice(dd + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: {
        quick: { type: 'boolean' },
        url: { type: 'string' },
        target: { type: 'string' },
        draft: { type: 'string' },
        out: { type: 'string' },
        save: { type: 'boolean' },
        'no-readme': { type: 'boolean' },
        'max-running': { type: 'string' },
        'max-queue': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    usage(positionals.length === 0 ? 'name a scenario (or all)' : `one scenario at a time (got ${positionals.join(', ')})`);
  const name = positionals[0]!;
  const chosen = name === 'all' ? [...SCENARIOS] : [scenarioByName(name) ?? usage(`unknown scenario "${name}"`)];
  const quick = values.quick === true;
  if (values.url && (values.target || values.draft || serverFlags.length))
    usage('--url drives an existing server: --target/--draft/server flags do not apply');
  const models = values.url ? null : findModels({ target: values.target, draft: values.draft });
  if (!values.url && !models) {
    process.stderr.write(`load: ${NO_MODELS_MESSAGE}\n`);
    return 2;
  }
  if (models) process.stdout.write(`models: ${models.target} + ${models.draft ?? '(no draft)'} (${models.source})\n`);
  if (values.save && values.out) usage('--save and --out exclude each other');
  const outDir = resolve(values.out ?? (values.save ? join(ROOT, 'load-tests', 'results') : join(ROOT, 'results', 'load')));
  mkdirSync(outDir, { recursive: true });
  const options: Record<string, string> = {};
  if (values['max-running']) options['max-running'] = values['max-running'];
  if (values['max-queue']) options['max-queue'] = values['max-queue'];

  let failed = false;
  const ran: ScenarioResult[] = [];
  for (const scenario of chosen) {
    process.stdout.write(`\n=== ${scenario.name}${quick ? ' (quick)' : ''} ===\n`);
    let result: ScenarioResult;
    try {
      result = await execute(scenario, {
        quick,
        models,
        ...(values.url ? { url: values.url } : {}),
        extraFlags: serverFlags,
        options,
        log: (m) => process.stdout.write(`  ${m}\n`),
      });
    } catch (e) {
      process.stdout.write(`  ERROR ${e instanceof Error ? e.message : String(e)}\n`);
      failed = true;
      continue;
    }
    ran.push(result);
    writeFileSync(join(outDir, resultFileName(scenario.name, quick)), `${JSON.stringify(result, null, 1)}\n`);
    if (result.skipped) process.stdout.write(`  SKIPPED ${result.skipped}\n`);
    for (const b of result.bars) process.stdout.write(`  ${b.pass ? 'PASS' : 'FAIL'}  ${b.name}: ${barText(b)}\n`);
    if (!result.pass && !result.skipped) failed = true;
  }

  const all = loadResults(
    outDir,
    SCENARIOS.map((s) => s.name),
  );
  writeFileSync(join(outDir, 'report.html'), renderHtml(all, new Date(), relative(ROOT, outDir) || outDir));
  writeFileSync(join(outDir, 'summary.md'), `# specd load tests: latest results\n\n${renderSummary(all, 'report.html')}`);
  if (values.save && !values['no-readme']) updateReadme(join(ROOT, 'load-tests', 'README.md'), renderSummary(all));
  process.stdout.write(
    `\n${ran.map((r) => `${r.scenario}${r.quick ? ' (quick)' : ''}: ${r.skipped ? 'SKIPPED' : r.pass ? 'PASS' : 'FAIL'}`).join('\n')}\n`,
  );
  process.stdout.write(`results: ${outDir} (report.html, summary.md)\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
