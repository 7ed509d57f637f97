/*
 * Turns validation findings into the one-line problems administrators read:
 *   <file>: <key.path>: found <JSON of the value or "nothing">, expected <what>
 * Owns the wording of "expected …" for zod's built-in checks and the rendering of key paths.
 * Pure: never throws on odd input (the raw value is whatever YAML produced).
 */
import { z } from 'zod';
import type { ConfigProblem } from './errors.js';

export { formatProblem, type ConfigProblem } from './errors.js';

export type KeyPath = readonly PropertyKey[];

export function renderKey(path: KeyPath): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg))) out += out ? `.${String(seg)}` : String(seg);
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

export function describeFound(value: unknown): string {
  if (value === undefined) return 'nothing';
  let json: string;
  try {
    json = JSON.stringify(value) ?? String(value);
  } catch {
    json = String(value);
  }
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

export function valueAt(raw: unknown, path: KeyPath): unknown {
  let cur: unknown = raw;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping of keys to values',
  record: 'a mapping of keys to values',
};

function quoteList(values: readonly unknown[]): string {
  const q = values.map((v) => JSON.stringify(v));
  return q.length <= 1 ? (q[0] ?? 'nothing') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

/**
 * Per-parse error map: supplies the "expected …" text for checks whose schema gave no message of its own
 * (schema-level messages take precedence in zod 4).
 */
export function expectedText(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_WORDS[issue.expected] ?? `a value of type ${issue.expected}`;
    case 'invalid_value':
      return quoteList(issue.values);
    case 'too_small':
      return issue.origin === 'number'
        ? `a number ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`
        : `at least ${String(issue.minimum)} ${issue.origin === 'string' ? 'character(s)' : 'item(s)'}`;
    case 'too_big':
      return issue.origin === 'number'
        ? `a number ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`
        : `at most ${String(issue.maximum)} ${issue.origin === 'string' ? 'character(s)' : 'item(s)'}`;
    case 'invalid_union':
      return 'options' in issue && Array.isArray(issue.options) ? quoteList(issue.options) : 'one of the allowed forms';
    case 'invalid_format':
      return `a ${issue.format}`;
    default:
      return issue.message ?? 'a valid value';
  }
}

function pickOption(union: z.ZodDiscriminatedUnion, value: unknown): z.ZodType | undefined {
  const disc = union.def.discriminator;
  const tag = valueAt(value, [disc]);
  for (const option of union.options) {
    if (!(option instanceof z.ZodObject)) continue;
    const literal: unknown = (option.shape as Record<string, unknown>)[disc];
    if (literal instanceof z.ZodLiteral && literal.values.has(tag as z.core.util.Literal)) return option;
  }
  return undefined;
}

/** The keys a strict object at `path` accepts, found by walking the schema alongside the raw value. */
export function knownKeys(schema: z.ZodType, raw: unknown, path: KeyPath): string[] {
  let cur: z.ZodType | undefined = schema;
  let depth = 0;
  while (cur) {
    if (cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault || cur instanceof z.ZodOptional) {
      cur = cur.unwrap() as z.ZodType;
    } else if (cur instanceof z.ZodDiscriminatedUnion) {
      cur = pickOption(cur, valueAt(raw, path.slice(0, depth)));
    } else if (depth === path.length) {
      return cur instanceof z.ZodObject ? Object.keys(cur.shape as object) : [];
    } else if (cur instanceof z.ZodObject) {
      cur = (cur.shape as Record<string, z.ZodType>)[String(path[depth++])];
    } else if (cur instanceof z.ZodArray) {
      cur = cur.element as z.ZodType;
      depth++;
    } else if (cur instanceof z.ZodRecord) {
      cur = cur.valueType as z.ZodType;
      depth++;
    } else {
      return [];
    }
  }
  return [];
}

/** One problem per zod issue, and one per unknown key (so each names its key). */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], raw: unknown, schema: z.ZodType): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, raw, issue.path);
      for (const key of issue.keys) {
        out.push({
          key: renderKey([...issue.path, key]),
          found: describeFound(valueAt(raw, [...issue.path, key])),
          expected: `no key ${JSON.stringify(key)} here${known.length ? ` (known keys: ${known.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    out.push({ key: renderKey(issue.path), found: describeFound(valueAt(raw, issue.path)), expected: issue.message });
  }
  return out;
}
