export * from './errors.ts';
export * from './openai.ts';
export * from './params.ts';
export * from './stats.ts';
export * from './ws.ts';
export * from './json.ts';
export * from './tokenize.ts';
