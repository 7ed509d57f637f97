/*
 * Node faults of `cartero lab fault` that live in a node's configuration rather than in DNS or in a
 * signal: `smtp-tempfail [AT]` puts the node's SMTP listeners in maintenance (smtp.tempfail, every
 * transaction answered 4xx at AT) and `smtp-ok` takes it out. The lab rewrites the node's final
 * configuration in its state directory, validates it, and reloads the node (SIGHUP: sessions stay
 * up), waiting until its log says the reload was applied. A stopped node gets the change at its next
 * start. Errors are LabError; a configuration the node would refuse is never written.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, parseYaml } from '../config/load.js';
import { formatProblem } from '../config/problems.js';
import { validateConfig } from '../config/validate.js';
import { isOurs, LabError } from './runner.js';
import { readState, writeAtomic } from './state.js';

export const TEMPFAIL_POINTS = ['connect', 'mail', 'rcpt', 'data'] as const;
export type TempfailPoint = (typeof TEMPFAIL_POINTS)[number];

/** The reply a lab node in maintenance gives (the text says why, for whoever reads a bounce or a log). */
export const LAB_TEMPFAIL_REPLY = '451 4.3.2 Service temporarily unavailable (cartero lab fault smtp-tempfail), try again later';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node configuration with smtp.tempfail set (`at`) or removed (null). Pure. */
export function withTempfail(raw: unknown, at: TempfailPoint | null): Record<string, unknown> {
  if (!isRecord(raw)) throw new LabError('the node configuration is not a YAML mapping');
  const out: Record<string, unknown> = structuredClone(raw);
  const smtp: Record<string, unknown> = isRecord(out['smtp']) ? { ...out['smtp'] } : {};
  if (at === null) delete smtp['tempfail'];
  else smtp['tempfail'] = { at, reply: LAB_TEMPFAIL_REPLY };
  out['smtp'] = smtp;
  return out;
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Waits until the node's log, after `offset`, says how its reload went. */
async function waitReloaded(name: string, log: string, offset: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(log).subarray(offset).toString('utf8');
    } catch {
      // not there yet
    }
    if (/configuration reload failed/.test(text)) throw new LabError(`node ${name} refused the new configuration; its log:\n${text.trimEnd().split('\n').slice(-10).join('\n')}`);
    if (/smtp configuration reloaded/.test(text)) return;
    if (Date.now() > end) throw new LabError(`node ${name} did not log a reload within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Puts a node's SMTP listeners in maintenance (`at`) or back to normal (null), live when it runs. */
export async function labSmtpTempfail(stateDir: string, name: string, at: TempfailPoint | null, options: { timeoutMs?: number } = {}): Promise<{ running: boolean }> {
  const state = readState(resolve(stateDir));
  const n = Object.hasOwn(state.nodes, name) ? state.nodes[name] : undefined;
  if (!n) throw new LabError(`no node "${name.slice(0, 60)}" in this lab (nodes: ${Object.keys(state.nodes).join(', ')})`);
  let text: string;
  try {
    text = readFileSync(n.config, 'utf8');
  } catch (err) {
    throw new LabError(`node ${name}: cannot read ${n.config}: ${(err as Error).message}`);
  }
  const parsed = parseYaml(text);
  if ('problems' in parsed) throw new LabError(parsed.problems.map((p) => formatProblem(n.config, p)).join('\n'));
  const next = withTempfail(parsed.value, at);
  const checked = validateConfig(next, dirname(n.config));
  if ('problems' in checked) throw new LabError(checked.problems.map((p) => formatProblem(n.config, p)).join('\n'));
  const header = text.startsWith('#') ? text.slice(0, text.indexOf('\n') + 1) : '';
  const offset = sizeOf(n.log);
  writeAtomic(n.config, `${header}${stringify(next)}`);
  try {
    loadConfig(n.config);
  } catch (err) {
    throw new LabError(err instanceof ConfigError ? err.lines().join('\n') : String(err));
  }
  if (!isOurs(n.pid, n.config)) return { running: false };
  process.kill(n.pid!, 'SIGHUP');
  await waitReloaded(name, n.log, offset, options.timeoutMs ?? 10_000);
  return { running: true };
}
