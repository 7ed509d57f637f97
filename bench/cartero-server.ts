/*
 * The Cartero side of the IMAP/POP3 benchmark as its own process: the same IMAP and POP3 servers and
 * listeners that `cartero serve` builds from a configuration file, without the SMTP side, so the bench
 * can run it under --expose-gc (and --cpu-prof). SIGUSR2 runs a full garbage collection and prints one
 * JSON line with memoryUsage(), so memory per connection is measured on live objects, not on garbage
 * that happens not to be collected yet. SIGTERM drains and exits.
 * Usage: node --expose-gc --import tsx bench/cartero-server.ts CONFIG.yaml
 */
import '../src/threadpool.js';
import '../src/heap-tuning.js';
import { loadConfig } from '../src/config/load.js';
import { createImapServer } from '../src/imap/server.js';
import { createLogger } from '../src/log/logger.js';
import { protocolListenerSpecs, startListeners } from '../src/net/listeners.js';
import { createPop3Server } from '../src/pop3/server.js';
import { openStore } from '../src/store/index.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: cartero-server.ts CONFIG.yaml');
  process.exit(2);
}
const config = loadConfig(file);
const logger = createLogger(config.log);
const store = await openStore(config.store, { migrate: true });
const imap = createImapServer({ config, store, logger });
const pop3 = createPop3Server({ config, store, logger });
const listeners = await startListeners([...protocolListenerSpecs(config, 'imap', imap), ...protocolListenerSpecs(config, 'pop3', pop3)], { logger });
for (const l of listeners.bound) logger.info({ proto: l.proto, address: l.address, port: l.port }, 'listening');

const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ msg: 'memory', gc: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, external: m.external, sessions: imap.sessions() })}\n`);
});

process.once('SIGTERM', () => {
  void (async () => {
    await Promise.all([imap.drain(5000), pop3.drain(5000), listeners.close(5000)]);
    await store.close();
    process.exit(0);
  })();
});
