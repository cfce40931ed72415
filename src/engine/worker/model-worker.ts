/**
 * The model worker thread: loads the target and draft once and runs the engine core's loop (core/engine-core.ts),
 * which owns every stream's caches and decides what each batched pass runs. ONNX Runtime's Node binding runs
 * synchronously, so this is the only thread that ever blocks on a forward pass; the event loop that serves sockets
 * never does. Messages (opens, closes) are handled between the core's iterations.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DecoderModel } from '../model/decoder.ts';
import type { FromWorker, ToWorker, WorkerInit } from '../ipc/messages.ts';
import { EngineCore } from '../core/engine-core.ts';
import { calibrate } from './calibrate.ts';
import { Grammars } from '../grammar/grammars.ts';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);

async function main(): Promise<void> {
  let target: DecoderModel, draft: DecoderModel | null;
  try {
    target = await DecoderModel.load(init.targetPath, init.load);
    // The draft is tiny: splitting its ops across threads costs more in wake-ups than it saves.
    draft = init.draftPath ? await DecoderModel.load(init.draftPath, { ...init.load, threads: 1 }) : null;
  } catch (e) {
    post({ type: 'load-failed', message: e instanceof Error ? e.message : String(e) });
    return;
  }
  const calibration = await calibrate(target, draft, init.maxK, init.maxRows);
  const grammars = new Grammars(init.grammarVocabulary, target.vocab, target.info.eosIds);
  const core = new EngineCore(
    { target, draft },
    new Set(target.info.eosIds),
    { maxK: init.maxK, prefillChunk: init.prefillChunk, calibration, grammar: (spec) => grammars.constraint(spec) },
    (results, report) => post({ type: 'out', results, report }),
    (sid, message) => post({ type: 'failed', sid, message }),
  );
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'open') core.open(msg);
    else if (msg.type === 'close') core.close(msg.sid);
    else if (msg.type === 'crash')
      process.exit(70); // in a worker thread this ends the thread, not the process
    else core.stop();
  });
  post({ type: 'ready', target: target.info, draft: draft?.info ?? null, calibration });
  await core.run();
  post({ type: 'stopped' });
}

void main();
