/**
 * What the benchmarks and the model scripts share: the repository root, the bundled model folders, their command
 * line, and where their results go. A run writes to results/ (git-ignored) and leaves every committed file as it
 * is; `--save` writes over the committed copies (docs/bench/*.json, docs/frontier.svg) instead.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DRAFT, DEFAULT_TARGET, PACKAGE_ROOT } from '../../src/config/schema.ts';
import { type Machine, machine, machineLine } from '../../src/lib/machine.ts';

export const ROOT = resolve(PACKAGE_ROOT);
export const TARGET_DIR = join(ROOT, DEFAULT_TARGET);
export const DRAFT_DIR = join(ROOT, DEFAULT_DRAFT);
/** Where runs write unless told --save: ignored by git. */
export const RESULTS_DIR = join(ROOT, 'results');

export interface BenchCli<K extends string> {
  /** Each option's value: as given (`--name value` or `--name=value`), else its default. */
  opts: Record<K, string>;
  /** The option as a number (a usage error when it is not one). */
  num(name: K): number;
  save: boolean;
  /** The machine this run is on (also printed when the command line is parsed); record it with the figures. */
  machine: Machine;
  /**
   * The path a result file is written to, its folder created: `committed` (relative to the repository root) with
   * --save, else the same base name in --out DIR, else in results/.
   */
  output(committed: string): string;
  /** Writes `{date, machine, ...fields}` as JSON to output(committed), says where, and returns the path. */
  writeJson(committed: string, fields: Record<string, unknown>): string;
}

/**
 * Parses `npm run <command> -- [--name value …] [--save] [--out DIR]` against `defaults` (every option the command
 * takes, with its default); unknown options and --help print the usage, exiting 2 and 0.
 */
export function benchCli<K extends string>(command: string, defaults: Record<K, string>, argv = process.argv.slice(2)): BenchCli<K> {
  const names = Object.keys(defaults) as K[];
  const shown = (v: string) => (v.startsWith(`${ROOT}/`) ? relative(ROOT, v) : v);
  const usage = [
    `Usage: npm run ${command} -- [options]`,
    '',
    ...names.map((n) => `  --${n.padEnd(16)} default: ${shown(defaults[n])}`),
    `  --${'save'.padEnd(16)} write the results over the committed ones (docs/bench/, docs/) instead of results/`,
    `  --${'out DIR'.padEnd(16)} write the results to DIR instead of results/`,
    '',
  ].join('\n');
  const fail = (message: string): never => {
    process.stderr.write(`${command}: ${message}\n\n${usage}`);
    process.exit(2);
  };
  let values: Record<string, string | boolean | undefined> = {};
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
        save: { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  if (values['help']) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const save = values['save'] === true;
  const out = typeof values['out'] === 'string' ? resolve(values['out']) : null;
  if (save && out) fail('--save and --out exclude each other');
  const opts = Object.fromEntries(names.map((n) => [n, typeof values[n] === 'string' ? values[n] : defaults[n]])) as Record<K, string>;
  const host = machine();
  process.stdout.write(`${command}: ${machineLine(host)}\n`);
  return {
    opts,
    save,
    machine: host,
    num(name) {
      const v = Number(opts[name]);
      return Number.isFinite(v) ? v : fail(`--${name} must be a number (got "${opts[name]}")`);
    },
    output(committed) {
      const path = save ? join(ROOT, committed) : join(out ?? RESULTS_DIR, basename(committed));
      mkdirSync(dirname(path), { recursive: true });
      return path;
    },
    writeJson(committed, fields) {
      const path = this.output(committed);
      writeFileSync(path, `${JSON.stringify({ date: new Date().toISOString(), machine: host, ...fields }, null, 2)}\n`);
      process.stdout.write(`wrote ${path}\n`);
      return path;
    },
  };
}
