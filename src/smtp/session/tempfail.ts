/*
 * Maintenance mode of an SMTP listener (`smtp.tempfail`, Postfix's `defer` restriction): every new
 * session (at `connect`) or transaction (at `mail`, `rcpt` or the end of `data`) gets the configured
 * 4xx instead of going on, so senders keep the mail queued and retry or try the next MX. Pure: turns
 * the configuration into a rule and tells a verb whether it answers now. Never applies to LMTP.
 */
import { reply, type Reply } from '../proto/reply.js';
import type { SessionContext } from './types.js';

export type TempfailPoint = 'connect' | 'mail' | 'rcpt' | 'data';

export interface TempfailRule {
  at: TempfailPoint;
  reply: Reply;
}

const TEMP = /^(4\d\d) (4\.\d{1,3}\.\d{1,3}) (.+)$/s;

/** The rule for `smtp.tempfail` (validated by the schema); null when off or malformed. */
export function tempfailRule(setting: { at: TempfailPoint; reply: string } | undefined): TempfailRule | null {
  if (!setting) return null;
  const m = TEMP.exec(setting.reply);
  if (!m) return null;
  // at connect only 421 closes the session properly (RFC 5321 §3.8); the text and detail code stay
  const code = setting.at === 'connect' ? 421 : Number(m[1]);
  return { at: setting.at, reply: reply(code, m[2], m[3]!) };
}

/** The reply this session must give at `point` instead of going on, or null. */
export function tempfailAt(ctx: Pick<SessionContext, 'settings'>, point: TempfailPoint): Reply | null {
  const rule = ctx.settings.tempfail?.() ?? null;
  return rule !== null && rule.at === point ? rule.reply : null;
}
