/**
 * Loads XGrammar (`@mlc-ai/web-xgrammar`, XGrammar compiled to WebAssembly: the grammar engine vLLM, SGLang and
 * TensorRT-LLM constrain output with) and types the part of its API specd uses.
 *
 * Two things shape this loader:
 * - The package is a CommonJS/UMD bundle in a `"type": "module"` package, so Node's ESM loader cannot import it;
 *   it is evaluated as CommonJS by hand. Its one dynamic `import('module')` is handed node:module instead, since
 *   code built by `new Function` has no import callback under every loader (vitest's has none).
 * - XGrammar reports a bad schema with a C++ FATAL that aborts the WebAssembly instance without unwinding it: the
 *   call throws, but the instance leaks its stack and, after enough aborts, its memory is corrupt (bench:xgrammar: a
 *   thousand bad schemas in a row, then a good one, is a `memory access out of bounds`). So every load evaluates
 *   the bundle afresh and returns an instance of its own, and whoever sees an abort throws that instance away.
 */
import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { createRequire } from 'node:module';

export interface XgTokenizerInfo {
  dispose(): void;
}
export interface XgCompiledGrammar {
  dispose(): void;
}
export interface XgGrammar {
  dispose(): void;
}
export interface XgCompiler {
  compileJSONSchema(
    schema: string,
    anyWhitespace?: boolean,
    indent?: number,
    separators?: [string, string],
    strictMode?: boolean,
  ): Promise<XgCompiledGrammar>;
  dispose(): void;
}
export interface XgMatcher {
  acceptToken(id: number): boolean;
  /** A fresh copy, ceil(vocab / 32) words; bit i of word w set = token 32w + i allowed. */
  getNextTokenBitmask(): Promise<Int32Array>;
  rollBack(tokens: number): void;
  isTerminated(): boolean;
  dispose(): void;
}

export interface XGrammar {
  Grammar: {
    fromJSONSchema(
      schema: string,
      anyWhitespace?: boolean,
      indent?: number,
      separators?: [string, string],
      strictMode?: boolean,
    ): Promise<XgGrammar>;
  };
  TokenizerInfo: {
    createTokenizerInfo(
      vocab: string[],
      vocabType: 'raw' | 'byte_fallback' | 'byte_level',
      prependSpace: boolean,
      vocabSize: number,
      stopTokenIds: number[],
    ): Promise<XgTokenizerInfo>;
  };
  GrammarCompiler: { createGrammarCompiler(info: XgTokenizerInfo, cacheEnabled: boolean): Promise<XgCompiler> };
  GrammarMatcher: {
    createGrammarMatcher(compiled: XgCompiledGrammar, stopTokens?: number[], terminateWithoutStop?: boolean): Promise<XgMatcher>;
  };
}

const require = createRequire(import.meta.url);
let source: { path: string; code: string } | null = null;

/** A fresh XGrammar instance (its WebAssembly module starts on first use). */
export function loadXGrammar(): XGrammar {
  if (!source) {
    const path = require.resolve('@mlc-ai/web-xgrammar');
    const code = readFileSync(path, 'utf8');
    const patched = code.replace("await import('module')", '__nodeModule');
    if (patched === code) throw new Error(`${path}: no import('module') to replace (a new @mlc-ai/web-xgrammar build?)`);
    source = { path, code: patched };
  }
  const mod = { exports: {} as Record<string, unknown> };
  new Function('exports', 'module', 'require', '__filename', '__dirname', '__nodeModule', source.code)(
    mod.exports,
    mod,
    require,
    source.path,
    source.path,
    nodeModule,
  );
  return mod.exports as unknown as XGrammar;
}

/** XGrammar's compact JSON layout: one line, `, ` and `: ` (whitespace freedom lets a small model loop on spaces). */
export const JSON_LAYOUT = { anyWhitespace: false, indent: -1 } as const;
