/*
 * `cartero domain add|list|remove`: the local mailbox domains of the directory.
 * Talks to the store's DirectoryStore only; expected store errors become one-line messages (exit 1).
 */
import { runGroup, type Command } from './args.js';
import { explain, withStore, type Io } from './context.js';
import { domainView, emit, table } from './output.js';

const commands: Record<string, Command> = {
  add: {
    synopsis: 'add NAME',
    summary: 'add a local mailbox domain',
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      const name = args.positionals[0] ?? '';
      const domain = await withStore(args.config, (store) =>
        explain(store.directory.addDomain(name), { exists: `domain ${name} already exists` }),
      );
      emit(io, args.json, domainView(domain), () => `domain ${domain.name} added\n`);
      return 0;
    },
  },
  list: {
    synopsis: 'list',
    summary: 'list the local mailbox domains',
    args: { min: 0, max: 0 },
    run: async (args, io) => {
      const domains = await withStore(args.config, (store) => store.directory.listDomains());
      const views = domains.map(domainView);
      emit(io, args.json, views, () => table(['DOMAIN', 'CREATED'], views.map((d) => [d.name, d.createdAt])));
      return 0;
    },
  },
  remove: {
    synopsis: 'remove NAME',
    summary: 'remove a domain that has no accounts or aliases left',
    args: { min: 1, max: 1 },
    run: async (args, io) => {
      const name = args.positionals[0] ?? '';
      await withStore(args.config, (store) =>
        explain(store.directory.removeDomain(name), {
          not_found: `domain ${name} not found`,
          conflict: `domain ${name} still has accounts or aliases; remove them first`,
        }),
      );
      emit(io, args.json, { removed: name }, () => `domain ${name} removed\n`);
      return 0;
    },
  },
};

export function runDomain(argv: string[], io: Io): Promise<number> {
  return runGroup('domain', 'Manage the local mailbox domains of the directory.', commands, argv, io);
}
