/**
 * Index (relative to `offset`, i.e. the token id when the row is one slice of a batch buffer) of the largest value
 * in logits[offset, offset + length). Ties go to the lowest index, matching torch.argmax, so greedy decoding agrees
 * with reference implementations token for token. NaN never wins; a row with no value above -Infinity yields 0.
 */
export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  if (offset < 0 || length < 1 || offset + length > logits.length) {
    throw new RangeError(`argmax: slice [${offset}, ${offset + length}) outside a row of ${logits.length}`);
  }
  let best = -Infinity;
  let at = 0;
  for (let i = 0; i < length; i++) {
    const x = logits[offset + i]!;
    if (x > best) {
      best = x;
      at = i;
    }
  }
  return at;
}
