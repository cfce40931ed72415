import { Lru } from '../../lib/lru.ts';
import { GrammarConstraint } from './constraint.ts';
import { specKey, type GrammarSpec, type GrammarVocabulary } from './spec.ts';
import { JSON_LAYOUT, loadXGrammar, type XgCompiledGrammar, type XgCompiler, type XGrammar } from './xgrammar.ts';

/** Compiled grammars kept for reuse: compiling one costs ~0.2 s of the model worker's loop on the bundled vocabulary (bench:xgrammar). */
const COMPILED = 32;

/**
 * The model worker's grammars: XGrammar's tokenizer info and compiler, started on the first constrained stream
 * (servers that never see one never pay for them), and compiled grammars by spec. A compile runs on the worker's
 * thread between iterations, so the first stream with a new schema holds the others up for it once.
 */
export class Grammars {
  private engine: Promise<{ xg: XGrammar; compiler: XgCompiler }> | null = null;
  // Disposing an evicted grammar is safe while a running stream's matcher uses it: XGrammar's objects share their
  // implementation by reference count.
  private readonly compiled = new Lru<string, XgCompiledGrammar>(COMPILED, (g) => g.dispose());

  constructor(
    private readonly vocab: GrammarVocabulary,
    private readonly vocabSize: number,
    private readonly stopIds: readonly number[],
  ) {}

  async constraint(spec: GrammarSpec): Promise<GrammarConstraint> {
    const { xg } = await this.start();
    const compiled = await this.compile(spec);
    return new GrammarConstraint(await xg.GrammarMatcher.createGrammarMatcher(compiled), this.vocabSize);
  }

  private start(): Promise<{ xg: XGrammar; compiler: XgCompiler }> {
    this.engine ??= (async () => {
      if (this.vocab.tokens.length > this.vocabSize) {
        throw new Error(`the tokenizer has ${this.vocab.tokens.length} tokens but the model's logits only ${this.vocabSize}`);
      }
      const xg = loadXGrammar();
      const tokens = [...this.vocab.tokens, ...new Array<string>(this.vocabSize - this.vocab.tokens.length).fill('')];
      const info = await xg.TokenizerInfo.createTokenizerInfo(tokens, this.vocab.type, this.vocab.prependSpace, this.vocabSize, [
        ...this.stopIds,
      ]);
      // XGrammar's own cache would keep every schema ever seen; the bounded map below keeps the recent ones.
      return { xg, compiler: await xg.GrammarCompiler.createGrammarCompiler(info, false) };
    })();
    this.engine.catch(() => (this.engine = null));
    return this.engine;
  }

  private async compile(spec: GrammarSpec): Promise<XgCompiledGrammar> {
    const key = specKey(spec);
    const hit = this.compiled.get(key);
    if (hit) return hit;
    const { compiler } = await this.start();
    let compiled: XgCompiledGrammar;
    try {
      compiled = await compiler.compileJSONSchema(spec.schema, JSON_LAYOUT.anyWhitespace, JSON_LAYOUT.indent, undefined, spec.strict);
    } catch (e) {
      // An abort leaves XGrammar's instance unsound (xgrammar.ts): later streams get a fresh one. The main thread
      // checked this schema already, so this is not expected to happen.
      this.engine = null;
      this.compiled.clear();
      throw new Error(`grammar compile failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.compiled.set(key, compiled);
    return compiled;
  }
}
