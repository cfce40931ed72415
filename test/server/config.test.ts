import { isAbsolute, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  configShape,
  envName,
  flagName,
  helpText,
  loadConfig,
  PACKAGE_ROOT,
  toEngineOptions,
} from '../../src/config/index.ts';

const load = (argv: string[], env: Record<string, string> = {}) => {
  const r = loadConfig(argv, env, '/work/somewhere');
  if (r.kind !== 'config') throw new Error('help');
  return r.config;
};

describe('config', () => {
  it('defaults: bundled models resolved against the package, speculative with auto k, frozen', () => {
    const c = load([]);
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      defaultMode: 'speculative',
      defaultK: 'auto',
      maxK: 8,
      maxCompletionTokens: 512,
      recentStreams: 100,
    });
    expect(c.target).toBe(join(PACKAGE_ROOT, 'target-models/specd-story-16m'));
    expect(c.draft).toBe(join(PACKAGE_ROOT, 'draft-models/specd-story-draft-1.5m'));
    expect(c.apiKey).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('flags win over environment variables; numbers are coerced and checked', () => {
    const c = load(['--port', '9000', '--max-running=3', '--api-key', 'k'], {
      SPECD_PORT: '7000',
      SPECD_MAX_QUEUE: '5',
      SPECD_DEFAULT_K: '3',
    });
    expect(c).toMatchObject({ port: 9000, maxRunning: 3, maxQueue: 5, defaultK: 3, apiKey: 'k' });
    expect(() => load(['--port', '70000'])).toThrow(/--port: must be ≤ 65535 \(got "70000"\)/);
    expect(() => load([], { SPECD_MAX_RUNNING: 'lots' })).toThrow(/SPECD_MAX_RUNNING: must be a number/);
    expect(() => load(['--default-k', '9'])).toThrow(/exceeds --max-k 8/);
    expect(() => load(['--dtype', 'int3'])).toThrow(ConfigError);
    expect(() => load(['--what'])).toThrow(/Unknown option '--what'/);
  });

  it('--no-draft / --draft none disable the draft and default to target mode; speculative then refused', () => {
    expect(load(['--no-draft'])).toMatchObject({ draft: null, defaultMode: 'target' });
    expect(load(['--draft', 'none'])).toMatchObject({ draft: null, defaultMode: 'target' });
    expect(load([], { SPECD_DRAFT: 'none' }).draft).toBeNull();
    expect(() => load(['--no-draft', '--default-mode', 'speculative'])).toThrow(/needs a draft model/);
  });

  it('user paths resolve against the working directory; hub ids survive with --allow-remote', () => {
    expect(load(['--target', 'models/t']).target).toBe('/work/somewhere/models/t');
    expect(load(['--target', '/abs/t']).target).toBe('/abs/t');
    const remote = load(['--allow-remote', '--remote-host', 'http://127.0.0.1:9999/', '--target', 'org/model']);
    expect(remote.target).toBe('org/model');
    expect(toEngineOptions(remote)).toMatchObject({ allowRemote: true, remoteHost: 'http://127.0.0.1:9999/' });
    expect(toEngineOptions(load(['--allow-remote', '--cache-dir', '/tmp/hub'])).cacheDir).toBe('/tmp/hub');
    expect(() => load(['--cache-dir', '/tmp/hub'])).toThrow(/--cache-dir: has no effect without --allow-remote/);
  });

  it('maps onto EngineOptions in one function', () => {
    const c = load([
      '--max-running',
      '2',
      '--max-queue',
      '4',
      '--queue-timeout-ms',
      '100',
      '--max-prompt-tokens',
      '50',
      '--max-k',
      '5',
      '--threads',
      '1',
      '--dtype',
      'q8',
      '--graph',
      'standard',
    ]);
    const o = toEngineOptions(c);
    expect(o).toEqual({
      targetPath: c.target,
      draftPath: c.draft,
      dtype: 'q8',
      graph: 'standard',
      threads: 1,
      maxRunning: 2,
      maxQueue: 4,
      queueTimeoutMs: 100,
      maxPromptTokens: 50,
      maxK: 5,
    });
    expect(isAbsolute(o.targetPath)).toBe(true);
  });

  it('--help is generated from the schema: every key with its flag, variable and description', () => {
    const r = loadConfig(['--help'], {});
    expect(r.kind).toBe('help');
    const text = helpText();
    for (const [key, schema] of Object.entries(configShape)) {
      expect(text).toContain(`--${flagName(key)}`);
      expect(text).toContain(envName(key));
      expect(text).toContain(schema.description!.split(' ').slice(0, 3).join(' '));
    }
    expect(text).toContain('--no-draft');
  });
});
