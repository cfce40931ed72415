/**
 * The schema checker's thread: converts each JSON Schema it is sent with XGrammar, which is the only reliable way
 * to learn whether XGrammar can constrain to it. A schema it cannot use aborts the WebAssembly instance (see
 * xgrammar.ts), so that instance is dropped and the next check loads a fresh one, here, off the event loop.
 */
import { parentPort } from 'node:worker_threads';
import { JSON_LAYOUT, loadXGrammar, type XGrammar } from './xgrammar.ts';
import type { CheckReply, CheckRequest } from './schema-checker.ts';

const port = parentPort!;
// XGrammar says why it aborted on stderr through console.error, bound when its module starts: keep what it says.
const printed: string[] = [];
console.error = (...parts: unknown[]) => {
  printed.push(parts.map(String).join(' '));
  if (printed.length > 8) printed.shift();
};

let xg: XGrammar | null = null;

port.on('message', (req: CheckRequest) => void check(req));

async function check({ id, spec }: CheckRequest): Promise<void> {
  printed.length = 0;
  let reply: CheckReply;
  try {
    xg ??= loadXGrammar();
    const grammar = await xg.Grammar.fromJSONSchema(spec.schema, JSON_LAYOUT.anyWhitespace, JSON_LAYOUT.indent, undefined, spec.strict);
    grammar.dispose();
    reply = { id, error: null };
  } catch (e) {
    xg = null;
    reply = { id, error: reason(printed, e) };
  }
  port.postMessage(reply);
}

/** XGrammar's own words, without its source location: `[FATAL] …/json_schema_converter.cc:902: Unsupported type "foo"`. */
function reason(lines: readonly string[], e: unknown): string {
  const fatal = lines.find((l) => l.startsWith('[FATAL]'));
  if (!fatal) return e instanceof Error ? e.message : String(e);
  return fatal.replace(/^\[FATAL\] \S+:\d+: /, '').replace(/^Check failed: .*? is false: /, '');
}
