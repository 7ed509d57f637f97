/*
 * Per-session command statistics for the disconnect log line, in Postfix's form
 * ("ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6": accepted/total when they differ).
 * Pure bookkeeping; bounded by the number of distinct verb names (unknown ones count as "unknown").
 */

const KNOWN = new Set(['helo', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'bdat', 'rset', 'noop', 'quit', 'vrfy', 'help']);

export class SessionStats {
  private counts = new Map<string, { ok: number; total: number }>();

  count(verb: string, ok: boolean): void {
    const name = KNOWN.has(verb.toLowerCase()) ? verb.toLowerCase() : 'unknown';
    const c = this.counts.get(name) ?? { ok: 0, total: 0 };
    c.total++;
    if (ok) c.ok++;
    this.counts.set(name, c);
  }

  summary(): string {
    let ok = 0;
    let total = 0;
    const parts: string[] = [];
    for (const [name, c] of this.counts) {
      ok += c.ok;
      total += c.total;
      parts.push(`${name}=${fmt(c.ok, c.total)}`);
    }
    parts.push(`commands=${fmt(ok, total)}`);
    return parts.join(' ');
  }
}

function fmt(ok: number, total: number): string {
  return ok === total ? String(total) : `${ok}/${total}`;
}
