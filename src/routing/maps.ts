/*
 * Lookup tables for address rewriting and transport selection (Postfix's canonical, virtual and
 * transport maps): one async `LookupMap` interface with inline (config), file (Postfix `key value` text)
 * and chained sources; the store-backed source (store-map.ts) plugs in without touching the callers. The file
 * parser is pure and refuses a whole file on its first malformed line (MapSyntaxError names file and
 * line); a reload that fails keeps the previous table. Also the Postfix lookup order for addresses.
 */
import { readFile } from 'node:fs/promises';

/** A table: `get` takes the lookup key as is and folds case itself; null means "no entry". */
export interface LookupMap {
  /** for messages and `cartero map test`: "inline:virtual_alias_maps[0]", "file:/etc/cartero/virtual" */
  readonly name: string;
  get(key: string): Promise<string | null>;
}

/** A table whose source can change under it (a file, a map kept in the store). */
export interface ReloadableMap extends LookupMap {
  /** Re-reads the source; on failure rejects with a MapError and keeps serving the previous table. */
  reload(): Promise<void>;
}

export type MapErrorKind = 'syntax' | 'io' | 'value';

/** A table that cannot be loaded: `file` and `line` say where (line 0 when the whole file is at fault). */
export class MapError extends Error {
  override readonly name = 'MapError';
  constructor(
    readonly kind: MapErrorKind,
    readonly source: string,
    readonly line: number,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(line > 0 ? `${source}, line ${line}: ${reason}` : `${source}: ${reason}`, options);
  }
}

export function isMapError(err: unknown): err is MapError {
  return err instanceof MapError;
}

/** Checks one value of a table with a known role (a transport, a virtual alias target); a message or null. */
export type ValueCheck = (value: string, key: string) => string | null;

export interface ParsedMap {
  entries: Map<string, string>;
  /** later duplicates of a key, ignored as postmap ignores them (it warns and keeps the first) */
  duplicates: { key: string; line: number; firstLine: number }[];
}

/** Longest logical line accepted (key, value and continuations); postmap has no limit, we do. */
export const MAX_LOGICAL_LINE = 64 * 1024;
/** Largest file accepted: a lookup table is held in memory. */
export const MAX_MAP_FILE_BYTES = 64 * 1024 * 1024;

function isBlankOrComment(line: string): boolean {
  const t = line.trimStart();
  return t === '' || t.startsWith('#');
}

/**
 * Parses Postfix's lookup table text (postmap(1) "INPUT FILE FORMAT"): `key whitespace value`;
 * empty, whitespace-only and `#` lines are ignored (a `#` later on a line is data); a line starting with
 * whitespace continues the logical line (joined with one space); keys are lowercased. Duplicate keys:
 * the first wins, as with postmap without -r. CRLF line ends are accepted. Pure; throws MapError.
 */
export function parseMapText(text: string, source: string, check?: ValueCheck): ParsedMap {
  const entries = new Map<string, string>();
  const firstLines = new Map<string, number>();
  const duplicates: ParsedMap['duplicates'] = [];
  const lines = text.split('\n');
  let current: { text: string; line: number } | null = null;

  const finish = (): void => {
    if (!current) return;
    const { text: logical, line } = current;
    current = null;
    const m = /^(\S+)\s+(\S[\s\S]*)$/.exec(logical.trimEnd());
    if (!m) throw new MapError('syntax', source, line, `expected "key whitespace value", found ${JSON.stringify(clip(logical))}`);
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    const problem = check?.(value, key);
    if (problem) throw new MapError('value', source, line, `${key}: ${problem}`);
    const first = firstLines.get(key);
    if (first !== undefined) {
      duplicates.push({ key, line, firstLine: first });
      return;
    }
    firstLines.set(key, line);
    entries.set(key, value);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (i === lines.length - 1 && line === '') break;
    const bad = /[\0\r\v\f]/.exec(line);
    if (bad) throw new MapError('syntax', source, lineNo, `control character ${JSON.stringify(bad[0])} in the line`);
    if (isBlankOrComment(line)) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!current) throw new MapError('syntax', source, lineNo, 'continuation line (starts with whitespace) with no entry before it');
      current.text += ` ${line.trim()}`;
    } else {
      finish();
      current = { text: line, line: lineNo };
    }
    if (current && current.text.length > MAX_LOGICAL_LINE) {
      throw new MapError('syntax', source, current.line, `entry longer than ${MAX_LOGICAL_LINE} characters`);
    }
  }
  finish();
  return { entries, duplicates };
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

class TableMap implements LookupMap {
  constructor(
    readonly name: string,
    protected table: ReadonlyMap<string, string>,
  ) {}
  async get(key: string): Promise<string | null> {
    return this.table.get(key.toLowerCase()) ?? null;
  }
  get size(): number {
    return this.table.size;
  }
}

/**
 * A table from the YAML configuration. A list value is joined with ", " (an address list); keys are
 * lowercased; two keys equal but for case are refused (YAML keeps both, a lookup could see only one).
 */
export function inlineMap(name: string, entries: Readonly<Record<string, string | readonly string[]>>, check?: ValueCheck): LookupMap {
  const table = new Map<string, string>();
  for (const [rawKey, rawValue] of Object.entries(entries)) {
    const key = rawKey.toLowerCase();
    const value = (typeof rawValue === 'string' ? rawValue : rawValue.join(', ')).trim();
    if (key === '' || /\s/.test(key)) throw new MapError('syntax', name, 0, `key ${JSON.stringify(rawKey)}: a key must be one word`);
    if (value === '') throw new MapError('syntax', name, 0, `key ${JSON.stringify(rawKey)}: empty value`);
    if (table.has(key)) throw new MapError('syntax', name, 0, `key ${JSON.stringify(rawKey)} given twice (keys are case-insensitive)`);
    const problem = check?.(value, key);
    if (problem) throw new MapError('value', name, 0, `${key}: ${problem}`);
    table.set(key, value);
  }
  return new TableMap(`inline:${name}`, table);
}

export interface FileMapOptions {
  check?: ValueCheck;
  /** told about ignored duplicate keys (postmap's "duplicate entry" warning) */
  onDuplicate?: (d: { source: string; key: string; line: number; firstLine: number }) => void;
}

/**
 * Reads a lookup table file as UTF-8 text (for FileMap and `cartero map import`). Throws MapError: `io`
 * when unreadable or larger than MAX_MAP_FILE_BYTES, `syntax` with the line of the first invalid UTF-8.
 */
export async function readMapText(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : String(err);
    throw new MapError('io', path, 0, `cannot read the file (${code})`, { cause: err });
  }
  if (bytes.length > MAX_MAP_FILE_BYTES) throw new MapError('io', path, 0, `file larger than ${MAX_MAP_FILE_BYTES} bytes`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (text.includes('\uFFFD')) {
    const line = text.slice(0, text.indexOf('\uFFFD')).split('\n').length;
    throw new MapError('syntax', path, line, 'not valid UTF-8');
  }
  return text;
}

/** A table in a Postfix-format text file, read at open and again at each reload(). */
export class FileMap extends TableMap implements ReloadableMap {
  private constructor(
    readonly path: string,
    private readonly options: FileMapOptions,
  ) {
    super(`file:${path}`, new Map());
  }

  static async open(path: string, options: FileMapOptions = {}): Promise<FileMap> {
    const map = new FileMap(path, options);
    await map.reload();
    return map;
  }

  async reload(): Promise<void> {
    const text = await readMapText(this.path);
    const parsed = parseMapText(text, this.path, this.options.check);
    for (const d of parsed.duplicates) this.options.onDuplicate?.({ source: this.path, ...d });
    this.table = parsed.entries;
  }
}

/** Several tables searched in order (Postfix's `virtual_alias_maps = a, b`): the first hit wins. */
export class MapChain implements ReloadableMap {
  readonly name: string;
  constructor(readonly maps: readonly LookupMap[]) {
    this.name = maps.map((m) => m.name).join(', ');
  }
  async get(key: string): Promise<string | null> {
    for (const m of this.maps) {
      const v = await m.get(key);
      if (v !== null) return v;
    }
    return null;
  }
  /** Reloads every reloadable member; each keeps its old table on failure; rejects with the first error. */
  async reload(): Promise<void> {
    const results = await Promise.allSettled(this.maps.map((m) => ('reload' in m && typeof m.reload === 'function' ? (m as ReloadableMap).reload() : null)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** Which of Postfix's address lookup forms matched (mail_addr_find). */
export type MatchForm = 'address' | 'address-base' | 'user' | 'user-base' | 'domain';

export interface AddressMatch {
  value: string;
  /** the key that matched, as looked up (lowercased) */
  key: string;
  form: MatchForm;
  /** the delimiter and extension ("+foo") when the match was on the address without it, else null */
  extension: string | null;
}

export interface AddressLookupOptions {
  /** recipient_delimiter characters; empty: no subaddress forms */
  delimiters: string;
  /** whether the bare `user` forms apply to this domain (Postfix: $myorigin, $mydestination) */
  userForm?: (domain: string) => boolean | Promise<boolean>;
}

/** Splits "user+foo" at the first delimiter after the first character: ["user", "+foo"], or null. */
export function splitExtension(local: string, delimiters: string): [string, string] | null {
  if (delimiters === '') return null;
  for (let i = 1; i < local.length; i++) {
    if (delimiters.includes(local.charAt(i))) return [local.slice(0, i), local.slice(i)];
  }
  return null;
}

/**
 * Postfix's lookup order for an address (canonical(5), virtual(5)): user+foo@domain, user@domain,
 * then for our domains user+foo and user, then @domain. The extension is reported as unmatched only
 * when a form without it matched (so callers can propagate it); never for @domain.
 */
export async function lookupAddress(map: LookupMap, address: string, o: AddressLookupOptions): Promise<AddressMatch | null> {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  const ext = splitExtension(local, o.delimiters);
  const tries: [string, MatchForm, string | null][] = [[`${local}@${domain}`, 'address', null]];
  if (ext) tries.push([`${ext[0]}@${domain}`, 'address-base', ext[1]]);
  for (const [key, form, extension] of tries) {
    const value = await map.get(key);
    if (value !== null) return { value, key, form, extension };
  }
  if (o.userForm && (await o.userForm(domain))) {
    const userTries: [string, MatchForm, string | null][] = [[local, 'user', null]];
    if (ext) userTries.push([ext[0], 'user-base', ext[1]]);
    for (const [key, form, extension] of userTries) {
      const value = await map.get(key);
      if (value !== null) return { value, key, form, extension };
    }
  }
  const key = `@${domain}`;
  const value = await map.get(key);
  return value === null ? null : { value, key, form: 'domain', extension: null };
}

/** Inserts an unmatched extension before the "@" of a result address (propagate_unmatched_extensions). */
export function withExtension(address: string, extension: string | null): string {
  if (!extension) return address;
  const at = address.lastIndexOf('@');
  return at < 0 ? address + extension : address.slice(0, at) + extension + address.slice(at);
}
