import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { freePort, runCli, spawnCli, tempConfig, type TempConfig } from './helpers.js';

/** Everything the server sends on connect, until it closes the connection. */
/** The first line the server sends (a server that keeps the session open is left with QUIT unsent). */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      data += d;
      const eol = data.indexOf('\r\n');
      if (eol >= 0) {
        s.destroy();
        resolve(data.slice(0, eol + 2));
      }
    });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

interface Running {
  child: ChildProcess;
  output: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

function startServe(file: string): Running {
  const child = spawnCli(['serve', '-c', file]);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: string): void => {
    out += d;
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.setEncoding('utf8').on('data', onData);
  child.stderr?.setEncoding('utf8').on('data', onData);
  return {
    child,
    output: () => out,
    waitFor: async (pattern, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (child.exitCode !== null) assert.fail(`serve exited (${child.exitCode}) before ${pattern}:\n${out}`);
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${pattern}:\n${out}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
}

describe('cartero serve', () => {
  let t: TempConfig;
  const ports = { smtp: 0, submission: 0, imap: 0, pop3: 0, lmtp: 0 };

  before(async () => {
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    t = tempConfig(`domains: [example.test]
smtp: { listen: [ { address: 127.0.0.1, port: ${ports.smtp} }, { address: 127.0.0.1, port: ${ports.submission}, submission: true } ] }
imap: { listen: [ { address: 127.0.0.1, port: ${ports.imap} } ] }
pop3: { listen: [ { address: 127.0.0.1, port: ${ports.pop3} } ] }
lmtp: { listen: [ { address: 127.0.0.1, port: ${ports.lmtp} } ] }
log: { level: info, format: text }
`);
  });
  after(() => t.cleanup());

  test('every protocol greets; `cartero reload` reloads, SIGTERM exits 0', async () => {
    const s = startServe(t.file);
    try {
      await s.waitFor(new RegExp(`listening proto=lmtp address=127\\.0\\.0\\.1 port=${ports.lmtp}`));
      assert.match(s.output(), new RegExp(`info  listening proto=smtp address=127\\.0\\.0\\.1 port=${ports.smtp}\\n`));
      assert.equal(await greeting(ports.smtp), '220 mx.example.test ESMTP Cartero\r\n');
      assert.equal(await greeting(ports.submission), '220 mx.example.test ESMTP Cartero\r\n');
      assert.equal(await greeting(ports.lmtp), '220 mx.example.test LMTP Cartero\r\n');
      assert.match(await greeting(ports.imap), /^\* OK \[CAPABILITY [^\]]*IMAP4rev2[^\]]*\]/);
      assert.match(await greeting(ports.pop3), /^\+OK /);

      const reload = await runCli(['reload', '-c', t.file]);
      assert.equal(reload.code, 0, reload.stderr);
      assert.match(reload.stdout, new RegExp(`reload signal sent to process ${s.child.pid}`));
      await s.waitFor(/configuration reloaded/);

      const exited = once(s.child, 'exit');
      s.child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, s.output());
      assert.match(s.output(), /stopped\n$/);
    } finally {
      if (s.child.exitCode === null) s.child.kill('SIGKILL');
    }
    // The configured domain was added to the directory at start.
    const store = await openStore({ backend: 'embedded', path: join(t.dir, 'data') });
    try {
      assert.ok(await store.directory.getDomain('example.test'));
    } finally {
      await store.close();
    }
  });

  test('a port in use: one line naming the listener, exit 1', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(ports.imap, '127.0.0.1', r));
    try {
      const r = await runCli(['serve', '-c', t.file]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const lines = r.stdout.split('\n').filter((l) => /EADDRINUSE/.test(l));
      assert.equal(lines.length, 1, r.stdout);
      assert.match(lines[0] ?? '', new RegExp(`fatal cannot listen on imap 127\\.0\\.0\\.1:${ports.imap} \\(imap\\.listen\\[0\\]\\): EADDRINUSE`));
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  test('a bad configuration: problem lines on stderr, exit 2, nothing bound', async () => {
    const bad = tempConfig(`smtp: { listen: [ { address: 127.0.0.1, port: ${ports.smtp}, tls: implicit } ] }\n`);
    try {
      const r = await runCli(['serve', '-c', bad.file]);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, `${bad.file}: smtp.listen[0].tls: found "implicit", expected a certificate in smtp.tls (cert and key) for implicit TLS\n`);
    } finally {
      bad.cleanup();
    }
  });
});
