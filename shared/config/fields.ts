// The field table: one entry per setting, naming its file key, flag, environment variable, kind and rules.
import type { ListenAddress } from "./parsers.ts";

/** How a field's text is parsed, and the type of its value. */
export type FieldKind =
  | "string"
  | "int"
  | "duration"
  | "bytes"
  | "listen"
  | "list"
  | "map"
  | "bool"
  | "url-list";

interface FieldCommon<V> {
  /** Key in the YAML file and in the resolved config object (snake_case). */
  readonly key: string;
  /** Command-line flag, e.g. `--node-id`. */
  readonly flag: `--${string}`;
  /** Environment variable, e.g. `NOVACRON_NODE_ID`. */
  readonly env: string;
  /** One line for `--help`. */
  readonly help: string;
  /** How `--help` shows the default, for defaults that are not a plain value (a rule list, a map). */
  readonly defaultHelp?: string;
  /** Placeholder shown after the flag in `--help` (defaults by kind: N, DURATION, SIZE, ...). */
  readonly metavar?: string;
  /** May change while running; a file change to a field that is not hot waits for a restart. */
  readonly hot?: boolean;
  /** The flag may be given many times; its values are joined. */
  readonly repeatable?: boolean;
  /** Never echo the value in errors (tokens). */
  readonly secret?: boolean;
  /** False for settings that cannot sensibly come from the file itself, such as the file's path. */
  readonly inFile?: boolean;
  /** Extra rule after parsing and range checks; returns what is wrong, or undefined. */
  readonly validate?: (value: V) => string | undefined;
}

/** A free-form string, optionally restricted to a fixed set. */
export interface StringField extends FieldCommon<string> {
  readonly kind: "string";
  readonly default: string | (() => string);
  readonly oneOf?: readonly string[];
}

/** A whole number, optionally bounded. */
export interface IntField extends FieldCommon<number> {
  readonly kind: "int";
  readonly default: number;
  readonly min?: number;
  readonly max?: number;
}

/** A duration in ms; defaults and bounds may be written as text ("1s"). */
export interface DurationField extends FieldCommon<number> {
  readonly kind: "duration";
  readonly default: number | string;
  readonly min?: number | string;
  readonly max?: number | string;
}

/** A size in bytes; defaults and bounds may be written as text ("100MB"). */
export interface BytesField extends FieldCommon<number> {
  readonly kind: "bytes";
  readonly default: number | string;
  readonly min?: number | string;
  readonly max?: number | string;
}

/** A `host:port` to listen on. */
export interface ListenField extends FieldCommon<ListenAddress> {
  readonly kind: "listen";
  readonly default: string | ListenAddress;
}

/** A list of strings: a YAML list or a comma-separated string. */
export interface ListField extends FieldCommon<readonly string[]> {
  readonly kind: "list";
  readonly default: readonly string[];
}

/** A list of URLs, each with one of `schemes` (e.g. "ws:"). */
export interface UrlListField extends FieldCommon<readonly string[]> {
  readonly kind: "url-list";
  readonly default: readonly string[];
  readonly schemes: readonly string[];
}

/** A string-to-string map: a YAML map or `k=v,k=v`. */
export interface MapField extends FieldCommon<Readonly<Record<string, string>>> {
  readonly kind: "map";
  readonly default: Readonly<Record<string, string>>;
}

/** A switch; as a flag, `--x` alone means true. */
export interface BoolField extends FieldCommon<boolean> {
  readonly kind: "bool";
  readonly default: boolean;
}

/**
 * A structured setting (a rule list, pipelines): a YAML structure in the file, JSON text as a flag or
 * variable. `parse` turns it into the typed value or throws (a ConfigError names the inner field).
 */
export interface CustomField<V = unknown> extends FieldCommon<V> {
  readonly kind: "custom";
  readonly default: V;
  readonly parse: (raw: unknown) => V;
}

/** Any one field of a table. */
export type Field =
  | CustomField
  | StringField
  | IntField
  | DurationField
  | BytesField
  | ListenField
  | ListField
  | UrlListField
  | MapField
  | BoolField;

/** A process's whole table of settings. */
export type FieldTable = readonly Field[];

/** The type of one field's resolved value. */
export type ValueOf<F extends Field> = F extends {
  kind: "string";
  oneOf: readonly (infer O extends string)[];
}
  ? O
  : F extends { kind: "string" }
    ? string
    : F extends { kind: "int" | "duration" | "bytes" }
      ? number
      : F extends { kind: "listen" }
        ? ListenAddress
        : F extends { kind: "list" | "url-list" }
          ? readonly string[]
          : F extends { kind: "map" }
            ? Readonly<Record<string, string>>
            : F extends { kind: "bool" }
              ? boolean
              : F extends { kind: "custom"; parse: (raw: unknown) => infer V }
                ? V
                : never;

/** The resolved config object of a table: one typed, read-only property per field key. */
export type ConfigOf<T extends FieldTable> = { readonly [F in T[number] as F["key"]]: ValueOf<F> };

/** Declares a table, keeping its keys and `oneOf` sets as literal types so `ConfigOf` can see them. */
export function defineFields<const T extends FieldTable>(fields: T): T {
  return fields;
}
