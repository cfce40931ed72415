export { type Config, type ConfigKey, configShape, envName, flagName, PACKAGE_ROOT } from './schema.ts';
export { ConfigError, configFrom, helpText, loadConfig, type LoadResult, toEngineOptions } from './load.ts';
