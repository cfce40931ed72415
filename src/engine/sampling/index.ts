/** Pure sampling maths: logits → distributions → tokens, and the speculative acceptance test. No I/O, no models. */
export { createRng, randomSeed, type Rng } from './rng.ts';
export { argmax, reshapes, toProbs } from './transform.ts';
export { tokenLogprob, type IdLogprob, type TokenLogprob } from './logprobs.ts';
export { sampleFrom } from './sample.ts';
export { sampleResidual, verifyToken, verifyTokenWith, type ResidualSampler, type Verdict, type Verifier } from './rejection.ts';
