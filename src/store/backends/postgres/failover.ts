/*
 * Multi-host connecting for node-postgres, which takes one host only: picks the server new connections
 * go to by trying each host of the URL in order (with target_session_attrs=read-write, skipping servers
 * that are in recovery or read-only, as libpq does), and forgets that choice after a connection-level
 * failure so the next connection looks again — that is how a node follows a promoted standby.
 * Never retries a statement itself: the failing call reports `unavailable` and the caller's next one
 * goes to the new server. Probe failures leave as an Error with SQLSTATE 08001.
 */
import pg from 'pg';
import { describeHost, urlFor, type HostPort, type ParsedUrl } from './hosts.js';

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** True for failures after which another server (or a fresh look at the list) may do better. */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isConnectionFailure);
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  if (typeof code !== 'string') return true; // pg's own "Connection terminated" and timeouts carry no code
  return code === '25006' || code.startsWith('08') || code.startsWith('57P') || SOCKET_CODES.has(code);
}

export class NoServerError extends Error {
  override readonly name = 'NoServerError';
  readonly code = '08001';
}

export class Failover {
  private current: HostPort | null = null;
  private probing: Promise<HostPort> | null = null;
  /** the pg.Client subclass the pool and the LISTEN/lock connections use */
  readonly Client: typeof pg.Client;

  constructor(
    readonly parsed: ParsedUrl,
    private readonly base: Omit<pg.ClientConfig, 'connectionString' | 'host' | 'port'>,
    private readonly connectTimeoutMs: number,
  ) {
    const selector = this;
    type ConnectCallback = ((err: Error) => void) | ((err: null, c: pg.Client) => void);
    this.Client = class FailoverClient extends pg.Client {
      override connect(): Promise<pg.Client>;
      override connect(callback: ConnectCallback): void;
      override connect(callback?: ConnectCallback): Promise<pg.Client> | void {
        const work = selector.pick().then((target) => {
          this.host = target.host;
          this.port = target.port;
          return super.connect();
        });
        if (!callback) return work;
        const cb = callback as (err: Error | null, c?: pg.Client) => void;
        work.then(
          (c) => cb(null, c),
          (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
        );
      }
    };
  }

  /** The URL of the first host, for configs that need one (the host is overridden at connect). */
  get url(): string {
    return urlFor(this.parsed, this.parsed.hosts[0] as HostPort);
  }

  /** the server connections go to now, or null until the next connection has looked */
  get server(): HostPort | null {
    return this.current;
  }

  /** After a connection-level failure: the next connection probes the list again. */
  invalidate(): void {
    this.current = null;
  }

  pick(): Promise<HostPort> {
    if (this.current) return Promise.resolve(this.current);
    this.probing ??= this.probe().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  private async probe(): Promise<HostPort> {
    const hosts = this.parsed.hosts;
    // the pool gives a connection connectTimeoutMs in all: share it between the probes and the connect
    const perHost = Math.max(500, Math.floor(this.connectTimeoutMs / (hosts.length + 1)));
    const problems: string[] = [];
    for (const host of hosts) {
      const client = new pg.Client({ ...this.base, connectionString: urlFor(this.parsed, host), connectionTimeoutMillis: perHost, application_name: 'cartero-probe' });
      client.on('error', () => {});
      try {
        await client.connect();
        if (this.parsed.target === 'read-write') {
          const row = (await client.query<{ standby: boolean; ro: string }>("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro")).rows[0];
          if (!row || row.standby || row.ro === 'on') {
            problems.push(`${describeHost(host)}: read-only${row?.standby ? ' (in recovery)' : ''}`);
            continue;
          }
        }
        this.current = host;
        return host;
      } catch (err) {
        problems.push(`${describeHost(host)}: ${err instanceof Error ? err.message || err.name : String(err)}`);
      } finally {
        await client.end().catch(() => {});
      }
    }
    const want = this.parsed.target === 'read-write' ? 'writable ' : '';
    throw new NoServerError(`no ${want}server reachable (${problems.join('; ')})`);
  }
}
