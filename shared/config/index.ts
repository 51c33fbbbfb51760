// Public surface of configuration: field tables, parsers, flag parsing, resolution, loading, hot reload, help.
export { type FlagValues, type ParsedArgs, parseArgs } from "./args.ts";
export {
  type BoolField,
  type BytesField,
  type ConfigOf,
  type DurationField,
  defineFields,
  type Field,
  type FieldKind,
  type FieldTable,
  type IntField,
  type ListenField,
  type ListField,
  type MapField,
  type StringField,
  type UrlListField,
  type ValueOf,
} from "./fields.ts";
export { commonFields } from "./common-fields.ts";
export { helpText } from "./help.ts";
export { didYouMean } from "./internal/suggest.ts";
export {
  CONFIG_PATH_KEY,
  configPathOf,
  type LoadResult,
  loadConfig,
  readConfigFile,
  STANDARD_SWITCHES,
} from "./load.ts";
export {
  formatBytes,
  formatDuration,
  formatListen,
  isUrl,
  type ListenAddress,
  parseBytes,
  parseDuration,
  parseList,
  parseListen,
  parseMap,
  redactUrl,
} from "./parsers.ts";
export {
  type ConfigFile,
  type ConfigInputs,
  type CrossCheck,
  type EnvVars,
  resolveConfig,
} from "./resolve.ts";
export { ConfigWatcher, type ConfigWatcherOptions, type WatcherTimers } from "./watcher.ts";
