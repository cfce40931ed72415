/**
 * The model worker thread: loads the target and draft once, keeps every stream's caches, and runs the steps the
 * main thread asks for, one at a time, earliest deadline first (opens and closes ahead of steps: takeNext in
 * scheduler/deadlines.ts). ONNX Runtime's Node binding runs synchronously, so this is the only thread that ever
 * blocks on a forward pass; the event loop that serves sockets never does.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DecoderModel } from '../model/decoder.ts';
import type { KvCache } from '../model/kv-cache.ts';
import type { FromWorker, ToWorker, WorkerInit } from '../ipc/messages.ts';
import { StreamState, emptyStep } from '../speculation/stream-state.ts';
import { takeNext } from '../scheduler/deadlines.ts';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);
const NO_EOS: ReadonlySet<number> = new Set();

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
  const models = { target, draft };
  const eos = new Set(target.info.eosIds);
  // `left`: completion tokens the stream may still make; a stream that is out of them (or ended on EOS) answers a
  // step queued ahead with an empty result.
  const streams = new Map<number, { state: StreamState<KvCache>; left: number; ended: boolean }>();
  const inbox: ToWorker[] = [];
  let busy = false;

  async function handle(msg: ToWorker): Promise<void> {
    switch (msg.type) {
      case 'open':
        streams.set(msg.sid, {
          state: new StreamState(models, msg.promptIds, msg.mode, msg.sampling, msg.ignoreEos ? NO_EOS : eos, init.prefillChunk),
          left: msg.maxNew,
          ended: false,
        });
        return;
      case 'close':
        streams.delete(msg.sid); // caches are plain CPU tensors: dropping the state frees them
        return;
      case 'step': {
        const s = streams.get(msg.sid);
        if (!s) return post({ type: 'failed', sid: msg.sid, message: `unknown stream ${msg.sid}` });
        if (s.ended || s.left <= 0) return post({ ...emptyStep(), sid: msg.sid });
        const t0 = performance.now();
        const r = await s.state.step(msg.k, s.left);
        r.wallMs = performance.now() - t0;
        s.left -= r.tokens.length;
        s.ended = r.eos;
        r.sid = msg.sid;
        return post(r);
      }
    }
  }

  // Messages are handled strictly one after another: a step awaits ORT, and a second step must not interleave.
  async function drain(): Promise<void> {
    if (busy) return;
    busy = true;
    while (inbox.length > 0) {
      const msg = takeNext(inbox);
      try {
        await handle(msg);
      } catch (e) {
        if (msg.type !== 'close') post({ type: 'failed', sid: msg.sid, message: e instanceof Error ? e.message : String(e) });
        streams.delete(msg.sid);
      }
    }
    busy = false;
  }

  port.on('message', (msg: ToWorker) => {
    // Steps queued ahead for a stream that has closed would only burn time the other streams are waiting for.
    if (msg.type === 'close') {
      for (let i = inbox.length - 1; i >= 0; i--) {
        if (inbox[i]!.sid === msg.sid && inbox[i]!.type === 'step') {
          inbox.splice(i, 1);
          post({ type: 'dropped', sid: msg.sid });
        }
      }
    }
    inbox.push(msg);
    void drain();
  });
  post({ type: 'ready', target: target.info, draft: draft?.info ?? null, calibration: await calibrate(target, draft, init.maxK) });
}

/** Median time of `reps` runs of `ids` on top of a 64-token context, rolled back after each run. */
async function timePass(m: DecoderModel, ids: number[], reps: number): Promise<number> {
  const cache = m.newCache();
  await m.forward(
    cache,
    Array.from({ length: 64 }, (_, i) => 5 + i),
  );
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await m.forward(cache, ids);
    times.push(performance.now() - t0);
    cache.truncate(64);
  }
  return times.sort((a, b) => a - b)[Math.floor(reps / 2)]!;
}

async function calibrate(target: DecoderModel, draft: DecoderModel | null, maxK: number) {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => 7 + i);
  const targetMs = [0];
  for (let T = 1; T <= maxK + 1; T++) targetMs.push(await timePass(target, ids(T), 5));
  return { draftMs: draft ? await timePass(draft, ids(1), 9) : 0, targetMs };
}

void main();
