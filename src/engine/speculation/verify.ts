import type { SourceCode } from '../ipc/messages.ts';
import type { TokenChooser } from './chooser.ts';

export interface Verified {
  tokens: number[];
  sources: SourceCode[];
  accepted: number;
}

/**
 * The target's side of one speculative round for one stream: `targetRow(j)` is the target's logits after the
 * stream's tokens plus drafts[0..j), so row 0 checks the first proposal and row drafts.length gives the bonus token.
 * Keeps the agreeing prefix, then one token of the target's own (the correction, or the bonus when every proposal
 * stood). `history` is extended in place while verifying (the penalties see the drafts) and restored.
 */
export function verifyDrafts(
  chooser: TokenChooser,
  targetRow: (j: number) => Float32Array,
  drafts: readonly number[],
  qRows: readonly Float32Array[],
  history: number[],
  eos: ReadonlySet<number>,
): Verified {
  const n = history.length;
  const tokens: number[] = [];
  const sources: SourceCode[] = [];
  let accepted = 0;
  for (let j = 0; j < drafts.length; j++) {
    const v = chooser.verify(targetRow(j), chooser.greedy ? null : qRows[j]!, drafts[j]!, history);
    if (!v.accepted) {
      tokens.push(v.token);
      sources.push(1);
      break;
    }
    accepted++;
    tokens.push(drafts[j]!);
    sources.push(0);
    history.push(drafts[j]!);
    if (eos.has(drafts[j]!)) break;
  }
  if (accepted === drafts.length && !eos.has(drafts.at(-1) ?? -1)) {
    tokens.push(chooser.choose(targetRow(drafts.length), history));
    sources.push(drafts.length > 0 ? 2 : 1);
  }
  history.length = n;
  return { tokens, sources, accepted };
}
