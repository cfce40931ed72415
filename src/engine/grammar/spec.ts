/** What the grammar code needs from the rest of the engine, as plain (structured-cloneable) data. */

/**
 * The output a constrained stream must produce, as XGrammar compiles it: JSON that validates against `schema`
 * (a JSON Schema, as text). `strict` refuses properties and items the schema does not name (json_schema's
 * reading); off, `{"type": "object"}` is any object (json_object's).
 */
export interface GrammarSpec {
  schema: string;
  strict: boolean;
}

/** The vocabulary as XGrammar's TokenizerInfo reads it. */
export interface GrammarVocabulary {
  /** By id; special tokens are "" (a grammar never lets one through as text). */
  tokens: string[];
  type: 'raw' | 'byte_fallback' | 'byte_level';
  /** SentencePiece's dummy prefix (Llama 2's decoder strips the space it adds in front of the text). */
  prependSpace: boolean;
}

export function specKey(spec: GrammarSpec): string {
  return `${spec.strict ? 's' : 'l'}:${spec.schema}`;
}
