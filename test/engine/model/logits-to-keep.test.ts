/**
 * The bundled exports take HF's `num_logits_to_keep` (scripts/models/logits_to_keep.py): the rows they keep are
 * bit-identical to the same rows of a full pass, the KV cache they leave is identical, and the decoder asks for
 * the fewest rows the step logic reads.
 */
import { describe, expect, it } from 'vitest';
import { DecoderModel } from '../../../src/engine/model/decoder.ts';
import { DRAFT_DIR, describeWithModels, TARGET_DIR } from '../../helpers/models.ts';

describeWithModels('num_logits_to_keep on the bundled pair', () => {
  describe.each([
    ['target', TARGET_DIR],
    ['draft', DRAFT_DIR],
  ])('%s', (_name, dir) => {
    it('keeps exactly the last N rows of a full pass, with and without a past, and leaves the same cache', async () => {
      const m = await DecoderModel.load(dir!, { dtype: 'fp32', threads: 1 });
      const V = m.vocab;
      const prompt = Array.from({ length: 40 }, (_, i) => 5 + ((i * 37) % 8000));
      for (const keep of [1, 3, 40, 100]) {
        const full = m.newCache();
        const part = m.newCache();
        const all = await m.forward(full, prompt, 0);
        const kept = await m.forward(part, prompt, keep);
        const rows = Math.min(keep, prompt.length);
        expect(all.length).toBe(prompt.length * V);
        expect(kept.length).toBe(rows * V);
        expect(Array.from(kept)).toEqual(Array.from(all.subarray((prompt.length - rows) * V)));
        // And on top of a past: a 5-token verify-shaped pass.
        const step = [11, 12, 13, 14, 15];
        const allStep = await m.forward(full, step, 0);
        const lastStep = await m.forward(part, step, 1);
        expect(Array.from(lastStep)).toEqual(Array.from(allStep.subarray(4 * V)));
        expect(part.length).toBe(full.length);
      }
    });
  });
});
