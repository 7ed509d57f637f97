/*
 * `cartero alias add|list|remove`: address aliases and catch-alls (`@domain`) of the directory.
 * Talks to the store's DirectoryStore only; expected store errors become one-line messages (exit 1).
 */
import { runGroup, type Command } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { aliasView, emit, table } from './output.js';

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

const commands: Record<string, Command> = {
  add: {
    synopsis: 'add SOURCE TARGET...',
    summary: 'make SOURCE (local@domain, or @domain for a catch-all) deliver to the TARGET addresses',
    args: { min: 2, max: Infinity },
    run: async (args, io) => {
      const [source = '', ...targets] = args.positionals;
      const alias = await withStore(args.config, (store) =>
        explain(store.directory.addAlias({ source, targets }), {
          not_found: `domain ${domainOf(source)} not found`,
          exists: `${source} already exists as an alias or account`,
        }),
      );
      emit(io, args.json, aliasView(alias), () => `alias ${alias.source} -> ${alias.targets.join(', ')} added\n`);
      return 0;
    },
  },
  list: {
    synopsis: 'list [DOMAIN]',
    summary: 'list aliases, of one domain or of all',
    args: { min: 0, max: 1 },
    run: async (args, io) => {
      const domain = args.positionals[0];
      const aliases = await withStore(args.config, (store) => store.directory.listAliases(domain));
      const views = aliases.map(aliasView);
      emit(io, args.json, views, () => table(['SOURCE', 'TARGETS'], views.map((a) => [a.source, a.targets.join(', ')])));
      return 0;
    },
  },
  remove: {
    synopsis: 'remove SOURCE',
    summary: 'remove an alias',
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      const source = args.positionals[0] ?? '';
      await withStore(args.config, (store) =>
        explain(store.directory.removeAlias(source), { not_found: `alias ${source} not found` }),
      );
      emit(io, args.json, { removed: source }, () => `alias ${source} removed\n`);
      return 0;
    },
  },
};

export function runAlias(argv: string[], io: Io): Promise<number> {
  return runGroup('alias', 'Manage address aliases and catch-alls.', commands, argv, io);
}
