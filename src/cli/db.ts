/*
 * `cartero db migrate`: applies pending schema migrations of the configured store and reports them.
 * Opens the store without migrating first so the applied versions can be reported.
 */
import { loadConfig } from '../config/load.js';
import { openStore } from '../store/index.js';
import { runGroup, type Command } from './args.js';
import type { Io } from './context.js';
import { emit } from './output.js';

const commands: Record<string, Command> = {
  migrate: {
    synopsis: 'migrate',
    summary: 'apply pending schema migrations to the configured store',
    args: { min: 0, max: 0 },
    run: async (args, io) => {
      const config = loadConfig(args.config);
      const store = await openStore(config.store, { migrate: false });
      let applied: number[];
      try {
        applied = await store.migrate();
      } finally {
        await store.close();
      }
      emit(io, args.json, { backend: config.store.backend, applied }, () =>
        applied.length === 0
          ? `${config.store.backend} store: schema up to date\n`
          : `${config.store.backend} store: applied migration${applied.length > 1 ? 's' : ''} ${applied.join(', ')}\n`,
      );
      return 0;
    },
  },
};

export function runDb(argv: string[], io: Io): Promise<number> {
  return runGroup('db', 'Manage the store schema.', commands, argv, io);
}
