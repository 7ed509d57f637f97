/*
 * `npm run bench -- <suite>`: runs one benchmark suite (or all) and prints its table.
 * Every suite bounds its load in count and time and talks only to loopback.
 */
import '../src/threadpool.js';

const suites: Record<string, () => Promise<void>> = {
  store: async () => (await import('./store.js')).main(),
  smtp: async () => (await import('./smtp.js')).main(),
  relay: async () => (await import('./relay.js')).main(),
  imap: async () => (await import('./imap.js')).main(),
  cluster: async () => (await import('./cluster.js')).main(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : ['store'];
for (const name of names) {
  const suite = suites[name];
  if (!suite) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  await suite();
}
