import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DEFAULT_ENGINE_OPTIONS } from '../engine/index.ts';

/**
 * The server's configuration: this schema is its single definition. Every key is settable as a CLI flag
 * (`maxRunning` → `--max-running`) and an environment variable (`SPECD_MAX_RUNNING`); `--help` is generated
 * from the descriptions and defaults below. Values from the CLI and the environment arrive as strings, hence the
 * coercions.
 */

export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_TARGET = 'target-models/specd-story-16m';
export const DEFAULT_DRAFT = 'draft-models/specd-story-draft-1.5m';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ invalid_type_error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be ≥ ${min}`)
    .max(max, `must be ≤ ${max}`);
const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  return v;
}, z.boolean());
const mode = z.enum(['speculative', 'target', 'draft']);
const k = z.union([z.literal('auto'), int(0, 64)], { errorMap: () => ({ message: 'must be "auto" or an integer ≥ 0' }) });

export const configShape = {
  host: z.string().min(1).default('127.0.0.1').describe('address to listen on'),
  port: int(0, 65535).default(8080).describe('TCP port (0 picks a free one)'),
  target: z
    .string()
    .min(1)
    .default(DEFAULT_TARGET)
    .describe(
      'target model folder (transformers.js layout); relative paths resolve against the working directory, the default against the package',
    ),
  draft: z
    .string()
    .default(DEFAULT_DRAFT)
    .describe('draft model folder sharing the target\'s vocabulary; "none" (or --no-draft) disables speculative and draft modes'),
  dtype: z.enum(['fp32', 'fp16', 'q8', 'q4']).default(DEFAULT_ENGINE_OPTIONS.dtype).describe('ONNX weights variant to load'),
  graph: z
    .enum(['auto', 'standard'])
    .default('auto')
    .describe(
      'graph to run from a local model folder: "auto" takes onnx/model_pooled.onnx when present (fp32; the bundled models, whose cache is written in place), "standard" the Hugging Face layout',
    ),
  threads: int(1, 256).default(DEFAULT_ENGINE_OPTIONS.threads).describe('ONNX Runtime intra-op threads of the model worker'),
  maxRunning: int(1, 4096).default(DEFAULT_ENGINE_OPTIONS.maxRunning).describe('streams decoding at once (more wait in the queue)'),
  maxQueue: int(0, 1_000_000)
    .default(DEFAULT_ENGINE_OPTIONS.maxQueue)
    .describe('streams allowed to wait for a slot; beyond it requests get 429 / overloaded'),
  queueTimeoutMs: int(1)
    .default(DEFAULT_ENGINE_OPTIONS.queueTimeoutMs)
    .describe('a queued stream not admitted within this many ms gets 429 / overloaded'),
  maxPromptTokens: int(1).default(DEFAULT_ENGINE_OPTIONS.maxPromptTokens).describe('longer prompts are refused with 400 prompt_too_long'),
  maxCompletionTokens: int(1).default(512).describe('upper bound (and default) of max_tokens'),
  defaultMode: mode.optional().describe('mode of requests that name none (default: speculative, or target without a draft)'),
  defaultK: k.default('auto').describe('draft length of requests that name none: "auto" or 0..max-k'),
  maxK: int(0, 64).default(DEFAULT_ENGINE_OPTIONS.maxK).describe('largest draft length (bounds "auto" and a requested k)'),
  apiKey: z
    .string()
    .min(1)
    .optional()
    .describe('require this key: HTTP "Authorization: Bearer <key>" on /v1/*, WebSocket header or ?api_key='),
  corsOrigins: z
    .string()
    .default('')
    .describe(
      'comma-separated browser origins allowed to call the HTTP API and open WebSockets, or "*" for any (default: none; same-origin pages and non-browser clients are always allowed)',
    ),
  shutdownGraceMs: int(0)
    .default(10_000)
    .describe('on SIGTERM/SIGINT, running streams get this long to finish before they end with finish_reason "shutdown"'),
  streamLogPath: z.string().min(1).optional().describe('append one JSON line per finished stream to this file'),
  recentStreams: int(0, 100_000).default(100).describe('finished streams kept for GET /v1/streams/recent'),
  maxBodyBytes: int(1)
    .default(1024 * 1024)
    .describe('larger HTTP bodies get 413'),
  wsMaxFrameBytes: int(1)
    .default(1024 * 1024)
    .describe('larger WebSocket frames close the socket with 1009'),
  wsBufferedLimitBytes: int(1)
    .default(1024 * 1024)
    .describe('a socket with more unsent bytes than this pauses its streams until it drains'),
  maxConnections: int(1, 1_000_000)
    .default(1024)
    .describe('open connections (HTTP and WebSocket together) beyond which new ones get 503 too_many_connections'),
  wsMaxStreams: int(1, 4096).default(16).describe('generations in flight per WebSocket; more get an error frame too_many_streams'),
  wsIdleTimeoutMs: int(0)
    .default(300_000)
    .describe('a WebSocket with no generation in flight and no frame from its client for this long is closed (0 disables)'),
  wsHeartbeatMs: int(0)
    .default(30_000)
    .describe('WebSocket ping interval; a socket that missed the previous pong is terminated (0 disables)'),
  allowRemote: bool.default(false).describe('let the engine fetch --target/--draft hub ids from --remote-host'),
  remoteHost: z.string().url().optional().describe('model hub address used with --allow-remote'),
  cacheDir: z.string().min(1).optional().describe('download cache for hub models (with --allow-remote)'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('pino log level'),
} as const;

export type ConfigKey = keyof typeof configShape;
export const ConfigInputSchema = z.object(configShape).strict();
export type ConfigInput = z.output<typeof ConfigInputSchema>;

/** The resolved, frozen configuration the rest of the server reads. */
export interface Config extends Omit<ConfigInput, 'draft' | 'defaultMode'> {
  /** Absolute target folder (or a hub id with allowRemote). */
  readonly target: string;
  /** Absolute draft folder, or null when the server runs without a draft. */
  readonly draft: string | null;
  readonly defaultMode: z.infer<typeof mode>;
}

/** `maxRunning` → `max-running`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `maxRunning` → `SPECD_MAX_RUNNING`. */
export function envName(key: string): string {
  return `SPECD_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
