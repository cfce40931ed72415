import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { EngineOptions } from '../engine/index.ts';
import {
  type Config,
  type ConfigKey,
  ConfigInputSchema,
  configShape,
  DEFAULT_DRAFT,
  DEFAULT_TARGET,
  envName,
  flagName,
  PACKAGE_ROOT,
} from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type LoadResult = { kind: 'config'; config: Config } | { kind: 'help'; text: string };

const KEYS = Object.keys(configShape) as ConfigKey[];

function isBooleanField(key: ConfigKey): boolean {
  return innerType(configShape[key]) instanceof z.ZodBoolean;
}

/** The schema under ZodDefault / ZodOptional / ZodEffects wrappers. */
function innerType(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return s;
  }
}

function placeholder(schema: z.ZodTypeAny): string {
  const s = innerType(schema);
  if (s instanceof z.ZodBoolean) return '';
  if (s instanceof z.ZodNumber) return ' <n>';
  if (s instanceof z.ZodEnum) return ` <${(s._def.values as string[]).join('|')}>`;
  if (s instanceof z.ZodUnion) return ' <auto|n>';
  return ' <string>';
}

/** `--help`, generated from the schema's descriptions and defaults. */
export function helpText(): string {
  const rows = KEYS.map((key) => {
    const schema = configShape[key] as z.ZodTypeAny;
    const def = schema instanceof z.ZodDefault ? ` (default: ${String(schema._def.defaultValue())})` : '';
    return { left: `--${flagName(key)}${placeholder(schema)}`, env: envName(key), text: `${schema.description ?? ''}${def}` };
  });
  rows.push({ left: '--no-draft', env: '', text: 'run without a draft model (same as --draft none)' });
  rows.push({ left: '-h, --help', env: '', text: 'print this help and exit' });
  const wrap = (text: string, indent: string, width = 100): string[] => {
    const lines: string[] = [];
    let line = '';
    for (const word of text.split(' ')) {
      if (line && indent.length + line.length + 1 + word.length > width) {
        lines.push(indent + line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) lines.push(indent + line);
    return lines;
  };
  return [
    'Usage: specd [options]',
    '',
    'Speculative-decoding text generation server (OpenAI-compatible HTTP + WebSocket token streaming).',
    'Every option can also be set with the environment variable shown; flags win over the environment.',
    '',
    ...rows.flatMap((r) => [`  ${r.left}${r.env ? `   [${r.env}]` : ''}`, ...wrap(r.text, '      ')]),
    '',
  ].join('\n');
}

/**
 * Parses CLI flags and environment variables (flags win) into a frozen Config.
 * Throws ConfigError naming the flag and variable of an invalid value.
 */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): LoadResult {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    'no-draft': { type: 'boolean' },
  };
  for (const key of KEYS) options[flagName(key)] = { type: isBooleanField(key) ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${e instanceof Error ? e.message : String(e)}\nRun with --help for the options.`);
  }
  if (values['help']) return { kind: 'help', text: helpText() };

  const raw: Record<string, unknown> = {};
  const origin: Partial<Record<ConfigKey, string>> = {};
  for (const key of KEYS) {
    const fromCli = values[flagName(key)];
    const fromEnv = env[envName(key)];
    if (fromCli !== undefined) {
      raw[key] = fromCli;
      origin[key] = `--${flagName(key)}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      raw[key] = fromEnv;
      origin[key] = envName(key);
    }
  }
  if (values['no-draft']) {
    raw['draft'] = 'none';
    origin.draft = '--no-draft';
  }

  const parsed = ConfigInputSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path[0] as ConfigKey;
      const where = origin[key] ?? `--${flagName(key)}`;
      return `${where}: ${issue.message}${raw[key] !== undefined ? ` (got ${JSON.stringify(raw[key])})` : ''}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}\nRun with --help for the options.`);
  }
  const input = parsed.data;

  const locate = (p: string, isDefault: boolean): string => {
    if (isDefault) return resolve(PACKAGE_ROOT, p);
    if (isAbsolute(p)) return p;
    const local = resolve(cwd, p);
    return existsSync(local) || !input.allowRemote ? local : p; // a hub id when remote loading is allowed
  };
  const target = locate(input.target, raw['target'] === undefined && input.target === DEFAULT_TARGET);
  const draftRaw = input.draft.trim();
  const draft =
    draftRaw === '' || draftRaw.toLowerCase() === 'none'
      ? null
      : locate(draftRaw, raw['draft'] === undefined && draftRaw === DEFAULT_DRAFT);

  const defaultMode = input.defaultMode ?? (draft ? 'speculative' : 'target');
  if (!draft && defaultMode !== 'target') {
    throw new ConfigError(
      `${origin.defaultMode ?? '--default-mode'}: mode "${defaultMode}" needs a draft model, but the draft is disabled`,
    );
  }
  if (input.defaultK !== 'auto' && input.defaultK > input.maxK) {
    throw new ConfigError(`${origin.defaultK ?? '--default-k'}: ${input.defaultK} exceeds --max-k ${input.maxK}`);
  }
  for (const key of ['remoteHost', 'cacheDir'] as const) {
    if (input[key] && !input.allowRemote) throw new ConfigError(`${origin[key]}: has no effect without --allow-remote`);
  }
  const config: Config = { ...input, target, draft, defaultMode };
  return { kind: 'config', config: Object.freeze(config) };
}

/** The one place the server's configuration maps onto the engine's construction options. */
export function toEngineOptions(config: Config): EngineOptions {
  return {
    targetPath: config.target,
    draftPath: config.draft,
    dtype: config.dtype,
    graph: config.graph,
    threads: config.threads,
    maxRunning: config.maxRunning,
    maxQueue: config.maxQueue,
    queueTimeoutMs: config.queueTimeoutMs,
    maxPromptTokens: config.maxPromptTokens,
    maxK: config.maxK,
    ...(config.allowRemote ? { allowRemote: true } : {}),
    ...(config.remoteHost ? { remoteHost: config.remoteHost } : {}),
    ...(config.cacheDir ? { cacheDir: resolve(config.cacheDir) } : {}),
  };
}

/** A config for tests and embedding: defaults plus overrides, validated the same way, no CLI or environment. */
export function configFrom(overrides: Partial<Record<ConfigKey, unknown>> = {}): Config {
  const argv: string[] = [];
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (typeof value === 'boolean') {
      if (value) argv.push(`--${flagName(key)}`);
      continue;
    }
    if (key === 'draft' && value === null) {
      argv.push('--no-draft');
      continue;
    }
    argv.push(`--${flagName(key)}=${String(value)}`);
  }
  const result = loadConfig(argv, {});
  if (result.kind !== 'config') throw new ConfigError('unexpected --help');
  return result.config;
}
