/*
 * Cluster-wide per-destination delivery slots on PostgreSQL (table destination_slots, migration 8).
 * A slot is a row (destination, slot) with slot < limit; taking one is a single INSERT of the lowest
 * free number, where a row whose lease ran out counts as free (ON CONFLICT … DO UPDATE … WHERE expired).
 * Two nodes racing for the same number: the primary key lets one win, the other's statement returns no
 * row and it tries the next number — no locks held between statements, no advisory locks, nothing to
 * clean up after a dead node but rows whose lease runs out. Errors are StoreErrors.
 */
import type { DestinationSlotStore } from '../../api.js';
import { StoreError } from '../../errors.js';
import type { Db } from './db.js';

/** how many racing rounds one acquire tries before reporting "all held" (each round sees new rows) */
const RACE_ROUNDS = 3;
const MAX_LIMIT = 10_000;

function check(destination: string, limit?: number): void {
  if (typeof destination !== 'string' || destination === '' || destination.length > 1000) throw new StoreError('invalid', 'destination slots: bad destination');
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)) throw new StoreError('invalid', `destination slots: limit must be 1–${MAX_LIMIT}, got ${limit}`);
}

export class PgDestinationSlots implements DestinationSlotStore {
  constructor(private readonly db: Db) {}

  async acquire(a: { destination: string; limit: number; owner: string; holder: string; leaseMs: number; now: number }): Promise<number | null> {
    check(a.destination, a.limit);
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const rows = await this.db.query<{ slot: number }>(
        'slots.acquire',
        `INSERT INTO destination_slots AS d (destination, slot, owner, holder, expires_at)
         SELECT $1::text, g, $3::text, $4::text, $5::bigint + $6::bigint
           FROM generate_series(0, $2::int - 1) AS g
          WHERE NOT EXISTS (SELECT 1 FROM destination_slots x WHERE x.destination = $1::text AND x.slot = g AND x.expires_at > $5::bigint)
          ORDER BY g
          LIMIT 1
         ON CONFLICT (destination, slot) DO UPDATE SET owner = EXCLUDED.owner, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
          WHERE d.expires_at <= $5::bigint
         RETURNING slot`,
        [a.destination, a.limit, a.owner, a.holder, a.now, a.leaseMs],
      );
      if (rows[0]) return rows[0].slot;
      // nothing free as this statement saw it, or another node took the number it picked: is anything free now?
      const free = await this.db.query<{ n: number }>(
        'slots.free',
        'SELECT $2::int - count(*)::int AS n FROM destination_slots WHERE destination = $1 AND slot < $2 AND expires_at > $3',
        [a.destination, a.limit, a.now],
      );
      if ((free[0]?.n ?? 0) <= 0) return null;
    }
    return null;
  }

  async renew(destination: string, slot: number, holder: string, leaseMs: number, now: number): Promise<boolean> {
    check(destination);
    const rows = await this.db.query('slots.renew', 'UPDATE destination_slots SET expires_at = $4::bigint + $5::bigint WHERE destination = $1 AND slot = $2 AND holder = $3 RETURNING 1', [destination, slot, holder, now, leaseMs]);
    return rows.length > 0;
  }

  async release(destination: string, slot: number, holder: string): Promise<void> {
    check(destination);
    await this.db.query('slots.release', 'DELETE FROM destination_slots WHERE destination = $1 AND slot = $2 AND holder = $3', [destination, slot, holder]);
  }

  async held(now: number): Promise<{ destination: string; owner: string; count: number }[]> {
    return this.db.query<{ destination: string; owner: string; count: number }>(
      'slots.held',
      'SELECT destination, owner, count(*)::int AS count FROM destination_slots WHERE expires_at > $1 GROUP BY destination, owner ORDER BY destination, owner',
      [now],
    );
  }
}
