/** What a scenario produces: bars (pass/fail against the thresholds), figures, tables and chart data. */
import { round } from '../../src/lib/stats.ts';
import type { ChartSpec } from '../../src/lib/svg-chart.ts';
import type { ModelPair } from './models.ts';
import type { ServerHandle } from './server.ts';

export type { ChartSpec, Series } from '../../src/lib/svg-chart.ts';

export type Op = '<' | '<=' | '==' | '>=' | '>';

export interface Bar {
  name: string;
  actual: number;
  op: Op;
  limit: number;
  unit: string;
  pass: boolean;
  /** How the figure was measured, when the name alone does not say. */
  detail?: string;
  /**
   * A latency bar: a speed target, enforced by `npm run load` (a benchmark run on a quiet machine) and only
   * reported by the quick versions inside `npm test`, where other suites share the cores.
   */
  timing?: true;
}

/** A bar on a latency figure (see Bar.timing). */
export function timingBar(...args: Parameters<typeof bar>): Bar {
  return { ...bar(...args), timing: true };
}

export function bar(name: string, actual: number, op: Op, limit: number, unit = '', detail?: string): Bar {
  const pass =
    Number.isFinite(actual) &&
    (op === '<'
      ? actual < limit
      : op === '<='
        ? actual <= limit
        : op === '=='
          ? actual === limit
          : op === '>='
            ? actual >= limit
            : actual > limit);
  return { name, actual: round(actual), op, limit, unit, pass, ...(detail ? { detail } : {}) };
}

export interface Table {
  title: string;
  rows: Record<string, string | number>[];
}

/** What a scenario's run() returns; the runner adds the rest of ScenarioResult. */
export interface Outcome {
  bars: Bar[];
  figures: Record<string, unknown>;
  tables: Table[];
  charts: ChartSpec[];
  notes: string[];
  /** Set when the scenario could not run against this server (e.g. SIGTERM to a --url server). */
  skipped?: string;
}

/** The outcome of a scenario that cannot run against this server. */
export function skippedOutcome(reason: string): Outcome {
  return { bars: [], figures: {}, tables: [], charts: [], notes: [], skipped: reason };
}

export interface ScenarioResult extends Outcome {
  scenario: string;
  quick: boolean;
  /** Every bar passed (false when skipped). */
  pass: boolean;
  startedAt: string;
  durationS: number;
  env: { node: string; platform: string; cpus: number; cpuModel: string; l3?: string | null; loadavg: number[]; commit: string | null };
  server: { url: string; spawned: boolean; flags: readonly string[] | null; models: ModelPair | null; errorLogs: string[] };
}

export interface ScenarioContext {
  server: ServerHandle;
  quick: boolean;
  models: ModelPair | null;
  /** Progress lines (the runner prints them; the tests stay quiet). */
  log: (msg: string) => void;
  /** Runner options a scenario may need with --url (e.g. the remote server's --max-running). */
  options: Record<string, string>;
}

export interface Scenario {
  name: string;
  /** One line for --help and the README. */
  summary: string;
  /** Server flags of the server the runner starts for it. */
  serverFlags(quick: boolean): string[];
  /** The scenario ends the server itself (shutdown): no "still running afterwards" check. */
  stopsServer?: boolean;
  /** Starts what the scenario drives instead of one server with serverFlags (cluster: replicas behind nginx). */
  start?(opts: { quick: boolean; models: ModelPair; extraFlags: readonly string[] }): Promise<ServerHandle>;
  run(ctx: ScenarioContext): Promise<Outcome>;
}

export function emptyOutcome(): Outcome {
  return { bars: [], figures: {}, tables: [], charts: [], notes: [] };
}
