/** Runs one scenario end to end: its own server (or --url), the scenario, the crash check, the result record. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { machine, machineLine } from '../../src/lib/machine.ts';
import { round } from '../../src/lib/stats.ts';
import type { ModelPair } from './models.ts';
import { ROOT } from './models.ts';
import { bar, type Scenario, type ScenarioResult } from './result.ts';
import { attachServer, type ServerHandle, startServer } from './server.ts';

export interface ExecuteOptions {
  quick: boolean;
  models: ModelPair | null;
  /** Drive this server instead of starting one. */
  url?: string;
  /** Extra flags for the started server (after the scenario's own). */
  extraFlags?: string[];
  log?: (msg: string) => void;
  options?: Record<string, string>;
}

function commit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

export function environment(): ScenarioResult['env'] {
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? '?',
    l3: machine().l3,
    loadavg: loadavg().map((v) => round(v, 2)),
    commit: commit(),
  };
}

/** Paths inside the repository are recorded relative to it, so committed results hold no machine paths. */
const rel = (p: string) => (isAbsolute(p) && p.startsWith(ROOT) ? relative(ROOT, p) || '.' : p);

export async function execute(scenario: Scenario, opts: ExecuteOptions): Promise<ScenarioResult> {
  const log = opts.log ?? (() => {});
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  log(machineLine());
  let server: ServerHandle;
  if (opts.url) {
    server = await attachServer(opts.url);
  } else {
    if (!opts.models) throw new Error('no models to start the server with');
    const flags = [...scenario.serverFlags(opts.quick), ...(opts.extraFlags ?? [])];
    if (scenario.start) {
      log(`starting what ${scenario.name} drives`);
      server = await scenario.start({ quick: opts.quick, models: opts.models, extraFlags: opts.extraFlags ?? [] });
    } else {
      log(`starting the server: ${flags.join(' ')}`);
      server = await startServer({ models: opts.models, flags });
    }
    log(`server ready at ${server.url} (pid ${server.pid})`);
  }
  const env = environment();
  try {
    const outcome = await scenario.run({ server, quick: opts.quick, models: opts.models, log, options: opts.options ?? {} });
    if (server.spawned && !scenario.stopsServer && !outcome.skipped) {
      outcome.bars.push(bar('server process still running afterwards (no crash)', server.alive() ? 1 : 0, '==', 1));
    }
    return {
      scenario: scenario.name,
      quick: opts.quick,
      pass: !outcome.skipped && outcome.bars.every((b) => b.pass),
      startedAt,
      durationS: round((performance.now() - t0) / 1000, 1),
      env,
      server: {
        url: server.url,
        spawned: server.spawned,
        flags: server.flags?.map(rel) ?? null,
        errorLogs: server.errorLogs(),
        models:
          opts.url || !opts.models
            ? null
            : { ...opts.models, target: rel(opts.models.target), draft: opts.models.draft === null ? null : rel(opts.models.draft) },
      },
      ...outcome,
    };
  } catch (e) {
    const tail = server.tail();
    throw new Error(
      `${scenario.name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${tail ? `\n--- server output ---\n${tail}` : ''}`,
    );
  } finally {
    await server.stop();
  }
}
