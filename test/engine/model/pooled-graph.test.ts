/**
 * The bundled folders' pooled graph (onnx/model_pooled.onnx, scripts/models/fused_graph.py): loaded by default,
 * driven through the same KV batch as any export, and refused when the model.onnx its weights point into has
 * changed since it was written (ONNX Runtime would read garbage weights by offset without noticing).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DecoderModel } from '../../../src/engine/model/decoder.ts';
import { DRAFT_DIR, describeWithModels } from '../../helpers/models.ts';

describeWithModels('the pooled graph', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'specd-pooled-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('is what a local fp32 folder loads; --graph standard loads model.onnx; both greedy-decode alike', async () => {
    const pooled = await DecoderModel.load(DRAFT_DIR, { dtype: 'fp32', threads: 1 });
    const standard = await DecoderModel.load(DRAFT_DIR, { dtype: 'fp32', threads: 1, graph: 'standard' });
    expect(pooled.info).toMatchObject({ file: 'onnx/model_pooled.onnx', pooled: true });
    expect(standard.info).toMatchObject({ file: 'onnx/model.onnx', pooled: false });
    const q8 = await DecoderModel.load(DRAFT_DIR, { dtype: 'q8', threads: 1 });
    expect(q8.info.pooled).toBe(false); // the pooled graph is fp32 only
    const greedy = async (m: DecoderModel) => {
      const cache = m.newCache();
      const out: number[] = [];
      let row = await m.forward(cache, [1, 400, 401, 402, 403], 1);
      for (let t = 0; t < 24; t++) {
        const next = row.indexOf(Math.max(...row));
        out.push(next);
        row = await m.forward(cache, [next], 1);
      }
      return out;
    };
    const a = await greedy(pooled);
    const b = await greedy(standard);
    // The bundled draft's pooled graph has an int8 LM head, so it may part from the fp32 graph at a near-tie; on
    // this prompt they agree for the first dozen tokens at least.
    expect(a.slice(0, 12)).toEqual(b.slice(0, 12));
  });

  it('is refused, saying why, when model.onnx is not the file it was written against', async () => {
    const copy = join(tmp, 'draft');
    cpSync(DRAFT_DIR, copy, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(copy, 'onnx', 'model_pooled.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(copy, 'onnx', 'model_pooled.json'), JSON.stringify({ ...manifest, sha256: '0'.repeat(64) }));
    await expect(DecoderModel.load(copy, { dtype: 'fp32', threads: 1 })).rejects.toThrow(/written against another onnx\/model.onnx/);
    // The standard graph of the same folder still loads.
    const standard = await DecoderModel.load(copy, { dtype: 'fp32', threads: 1, graph: 'standard' });
    expect(standard.info.file).toBe('onnx/model.onnx');
  });
});
