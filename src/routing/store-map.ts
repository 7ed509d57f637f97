/*
 * Lookup tables kept in the store (`{ store: NAME }`), shared by every node of a cluster. Lookups must
 * stay as cheap as an inline table (the router asks several keys per recipient), so each node holds an
 * in-memory copy of each store map, loaded at open and reloaded whole when the map's generation moves.
 * One StoreMapWatcher per node asks the store for the generations of every map it holds, in one query,
 * every `intervalMs` (default 500 ms, so a change made on any node is served everywhere within a
 * second); on PostgreSQL that is one indexed read per poll whatever the number of maps.
 * A value that fails its role's check (set before the map was given that role, or written by hand) is
 * logged once per generation and still served: the router then defers and virtual expansion fails that
 * address, as they do for any bad table value, instead of silently routing the mail elsewhere.
 * A failed poll or load keeps the previous copy and is logged once until the store answers again.
 */
import type { Logger } from '../log/logger.js';
import type { MapStore } from '../store/api.js';
import { MapError, type ReloadableMap, type ValueCheck } from './maps.js';

/** Entries fetched per query when a map is (re)loaded. */
const PAGE = 5000;
export const DEFAULT_STORE_MAP_INTERVAL_MS = 500;

export type StoreMapReader = Pick<MapStore, 'list' | 'generations'>;

export interface StoreMapOptions {
  check?: ValueCheck;
  logger?: Logger;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One store map held in memory; `get` never touches the store. */
export class StoreMap implements ReloadableMap {
  readonly name: string;
  private table: ReadonlyMap<string, string> = new Map();
  /** the generation the table was loaded at; -1 before the first load */
  private loadedGeneration = -1;
  private loading: Promise<void> | null = null;

  private constructor(
    readonly mapName: string,
    private readonly store: StoreMapReader,
    private readonly options: StoreMapOptions,
  ) {
    this.name = `store:${mapName}`;
  }

  /** Loads the map once; rejects with MapError (kind io) when the store cannot be read. */
  static async open(mapName: string, store: StoreMapReader, options: StoreMapOptions = {}): Promise<StoreMap> {
    const map = new StoreMap(mapName.toLowerCase(), store, options);
    await map.reload();
    return map;
  }

  async get(key: string): Promise<string | null> {
    return this.table.get(key.toLowerCase()) ?? null;
  }

  get size(): number {
    return this.table.size;
  }

  get generation(): number {
    return this.loadedGeneration;
  }

  /** Reloads unless the table was loaded at `generation` already. */
  async refresh(generation: number): Promise<boolean> {
    if (generation === this.loadedGeneration) return false;
    await this.reload();
    return true;
  }

  /**
   * Reads the whole map again. The generation is read before the entries, so a change that lands during
   * the load makes the next poll load once more. Concurrent calls share one load.
   */
  reload(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    let generation: number;
    const table = new Map<string, string>();
    try {
      generation = (await this.store.generations([this.mapName]))[this.mapName] ?? 0;
      let after: string | undefined;
      for (;;) {
        const page = await this.store.list(this.mapName, { ...(after === undefined ? {} : { after }), limit: PAGE });
        for (const e of page) table.set(e.key, e.value);
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.key;
      }
    } catch (err) {
      throw new MapError('io', this.name, 0, `cannot read the map from the store (${describe(err)})`, { cause: err });
    }
    const check = this.options.check;
    if (check) {
      for (const [key, value] of table) {
        const problem = check(value, key);
        if (problem) {
          this.options.logger?.error(
            { event: 'map_bad_value', map: this.name, key, generation },
            `${this.name}: entry ${key}: ${problem} (served as is; lookups of it fail until it is fixed)`,
          );
        }
      }
    }
    const before = this.loadedGeneration;
    this.table = table;
    this.loadedGeneration = generation;
    if (before >= 0 && before !== generation) {
      this.options.logger?.info({ event: 'map_reloaded', map: this.name, generation, entries: table.size }, `${this.name}: reloaded at generation ${generation}, ${table.size} entries`);
    }
  }
}

export interface StoreMapWatcherOptions {
  intervalMs?: number;
  logger?: Logger;
}

/** Polls the generations of a node's store maps and reloads those that changed. */
export class StoreMapWatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failing = false;
  private closed = false;
  private readonly intervalMs: number;

  constructor(
    private readonly store: StoreMapReader,
    private readonly maps: readonly StoreMap[],
    private readonly options: StoreMapWatcherOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DEFAULT_STORE_MAP_INTERVAL_MS;
  }

  start(): void {
    if (this.closed || this.timer || this.maps.length === 0) return;
    this.schedule();
  }

  /** One poll: asks every generation at once, reloads what moved. Never rejects. */
  poll(): Promise<void> {
    this.running ??= this.check().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    // a timeout after each poll, not an interval: a slow store never gets overlapping polls
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    try {
      const names = [...new Set(this.maps.map((m) => m.mapName))];
      const generations = await this.store.generations(names);
      await Promise.all(this.maps.map((m) => m.refresh(generations[m.mapName] ?? 0)));
      if (this.failing) this.options.logger?.info({ event: 'map_watch_recovered' }, 'store maps: the store answers again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) {
        this.options.logger?.warn({ event: 'map_watch_failed', err: describe(err) }, `store maps: cannot check for changes, previous tables kept: ${describe(err)}`);
      }
      this.failing = true;
    }
  }
}
