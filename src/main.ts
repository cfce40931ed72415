/**
 * Composition root, and the only module with side effects: config → logger, metrics, recorder → server (listening
 * at once, /ready 503) → engine (loaded in the background, then handed to the server) → signals.
 */
import { existsSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigError, loadConfig, toEngineOptions } from './config/index.ts';
import { createEngine, type ModelLayout } from './engine/index.ts';
import { createMetrics } from './metrics/index.ts';
import { createServer, EngineHolder, StreamRecorder } from './server/index.ts';

async function main(): Promise<number | null> {
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`specd: ${e.message}\n`);
    return 2;
  }
  if (loaded.kind === 'help') {
    process.stdout.write(loaded.text);
    return 0;
  }
  const config = loaded.config;
  if (!config.allowRemote) {
    for (const [flag, dir] of [
      ['--target', config.target],
      ['--draft', config.draft],
    ] as const) {
      if (dir !== null && !existsSync(dir)) {
        process.stderr.write(
          `specd: ${flag} ${dir}: no such model folder` + (flag === '--draft' ? ' (run without one with --no-draft)' : '') + '\n',
        );
        return 2;
      }
    }
  }
  const logger = pino({ level: config.logLevel, base: { svc: 'specd' } });
  // Last resort only: every request and frame has its own boundary, so reaching this is a bug. A process in an
  // unknown state should not keep serving; exit non-zero so that the orchestrator restarts it.
  const die = (kind: string) => (err: unknown) => {
    logger.fatal({ err }, `${kind}: exiting`);
    process.exit(70); // EX_SOFTWARE
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));
  const engine = new EngineHolder();
  const metrics = createMetrics({
    stats: () => engine.stats(),
    workerRestarts: () => engine.health().workerRestarts,
    processMetrics: true,
  });
  const recorder = new StreamRecorder({ capacity: config.recentStreams, logPath: config.streamLogPath, logger });
  const server = createServer({ engine, config, metrics, recorder, logger });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'already shutting down');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'signal received');
    server.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const { url } = await server.listen();
  logger.info({ url, target: config.target, draft: config.draft }, 'listening; loading models (GET /ready answers 503 until loaded)');

  // createEngine loads the engine itself (transformers.js, ONNX Runtime) only now, after the server listens.
  const t0 = performance.now();
  try {
    await engine.set(await createEngine(toEngineOptions(config)));
  } catch (err) {
    logger.fatal({ err }, 'could not load the models');
    // Also in plain words: this is the line someone who just typed `npm start` reads.
    process.stderr.write(`specd: could not load the models: ${err instanceof Error ? err.message : String(err)}\n`);
    await server.shutdown(0);
    return 1;
  }
  if (!stopping) {
    const models = engine.info();
    logger.info({ loadMs: Math.round(performance.now() - t0), target: models.target.id, draft: models.draft?.id ?? null }, 'models loaded');
    for (const [role, m] of [
      ['target', models.target],
      ['draft', models.draft],
    ] as const) {
      if (m) process.stdout.write(`specd ${role}: ${m.id}  ${describeLayout(m.layout)}\n`);
    }
    process.stdout.write(`specd ready at ${url}  (WebSocket ${url.replace(/^http/, 'ws')}/v1/stream, OpenAI base URL ${url}/v1)\n`);
  }
  return null; // keep serving until a signal
}

/** `llama fp32 (onnx/model.onnx), GQA 6 heads / 2 KV heads × 64, float32 KV, context 1024` */
function describeLayout(l: ModelLayout): string {
  const extras = [l.merged ? 'merged decoder' : '', l.positionIds ? '' : 'no position_ids', l.pooled ? 'KV written in place' : ''].filter(
    Boolean,
  );
  return (
    `${l.family} ${l.dtype} (${l.file}), ${l.layers} layers, ${l.attention} ${l.heads} heads / ${l.kvHeads} KV heads × ${l.headDim}, ` +
    `${l.kvDtype} KV, ${l.logitsDtype} logits, context ${l.contextLength}${extras.length ? `, ${extras.join(', ')}` : ''}`
  );
}

main().then(
  (code) => {
    if (code !== null) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`specd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
