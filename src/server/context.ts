import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { Engine } from '../engine/index.ts';
import type { Metrics } from '../metrics/index.ts';
import { type Limits, limitsFor } from '../protocol/index.ts';
import type { RequestDefaults } from './to-engine.ts';
import type { StreamRecorder } from './recorder.ts';
import { ConnectionCap } from './connection-cap.ts';
import { CorsPolicy } from './cors.ts';
import { StreamRunner } from './stream-runner.ts';

/** What the server is built from: everything injected, no globals (tests pass a FakeEngine and a silent logger). */
export interface ServerDeps {
  engine: Engine;
  config: Config;
  metrics: Metrics;
  recorder: StreamRecorder;
  logger: Logger;
}

/** Shared by the HTTP app and the WebSocket hub of one server. */
export interface ServerContext extends ServerDeps {
  runner: StreamRunner;
  lifecycle: { shuttingDown: boolean };
  connections: ConnectionCap;
  cors: CorsPolicy;
  limits: Limits;
  defaults: RequestDefaults;
}

export function createContext(deps: ServerDeps): ServerContext {
  return {
    ...deps,
    runner: new StreamRunner(deps),
    lifecycle: { shuttingDown: false },
    connections: new ConnectionCap(deps.config.maxConnections),
    cors: new CorsPolicy(deps.config.corsOrigins),
    limits: limitsFor(deps.config),
    defaults: { mode: deps.config.defaultMode, k: deps.config.defaultK, maxTokens: deps.config.maxCompletionTokens },
  };
}

/** A short random id: `prefix-` + 24 hex characters. */
export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString('hex')}`;
}
