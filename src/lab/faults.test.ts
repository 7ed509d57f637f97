import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { CliError, UsageError } from '../cli/args.js';
import { runLab } from '../cli/lab.js';
import type { Io } from '../cli/context.js';
import { LAB_TEMPFAIL_REPLY, labSmtpTempfail, withTempfail } from './faults.js';
import { LabError, writeState } from './state.js';

test('withTempfail sets and removes smtp.tempfail, keeping the rest', () => {
  const raw = { hostname: 'mx1.example.org', smtp: { listen: [{ address: '127.0.1.1', port: 2525 }] } };
  const on = withTempfail(raw, 'rcpt');
  assert.deepEqual(on['smtp'], { listen: raw.smtp.listen, tempfail: { at: 'rcpt', reply: LAB_TEMPFAIL_REPLY } });
  assert.deepEqual(raw.smtp, { listen: [{ address: '127.0.1.1', port: 2525 }] }, 'the input is not changed');
  assert.deepEqual(withTempfail(on, null), raw);
  assert.deepEqual(withTempfail({}, 'mail'), { smtp: { tempfail: { at: 'mail', reply: LAB_TEMPFAIL_REPLY } } });
  assert.throws(() => withTempfail(['not', 'a', 'mapping'], 'mail'), LabError);
});

/** A lab state directory with one node that is not running (no process to reload). */
function fakeLab(config: string): { dir: string; file: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-lab-fault-'));
  const file = join(dir, 'mx1.yaml');
  writeFileSync(file, config);
  writeState(dir, {
    version: 1,
    topology: 't1',
    topologyDir: dir,
    createdAt: new Date(0).toISOString(),
    dns: { pid: null, address: '127.0.0.1', port: 53 },
    nodes: { mx1: { address: '127.0.1.1', config: file, log: join(dir, 'mx1.log'), pid: null } },
  });
  return { dir, file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const CONFIG = `# written by cartero lab\nhostname: mx1.example.org\nstore: { backend: embedded, path: data }\nsmtp: { listen: [ { address: 127.0.1.1, port: 2525 } ] }\n`;

test('a node that is not running gets the change in its configuration file, header kept', async () => {
  const lab = fakeLab(CONFIG);
  try {
    assert.deepEqual(await labSmtpTempfail(lab.dir, 'mx1', 'data'), { running: false });
    const text = readFileSync(lab.file, 'utf8');
    assert.ok(text.startsWith('# written by cartero lab\n'));
    assert.deepEqual((parse(text) as { smtp: { tempfail: unknown } }).smtp.tempfail, { at: 'data', reply: LAB_TEMPFAIL_REPLY });
    await labSmtpTempfail(lab.dir, 'mx1', null);
    assert.equal((parse(readFileSync(lab.file, 'utf8')) as { smtp: Record<string, unknown> }).smtp['tempfail'], undefined);
  } finally {
    lab.cleanup();
  }
});

test('an unknown node, and a configuration the node would refuse, are LabErrors; nothing is written', async () => {
  const lab = fakeLab(CONFIG);
  try {
    await assert.rejects(labSmtpTempfail(lab.dir, 'mx9', 'mail'), (e: unknown) => e instanceof LabError && /no node "mx9"/.test(e.message));
    const broken = `${CONFIG}smtp_client: { port: -1 }\n`;
    writeFileSync(lab.file, broken);
    await assert.rejects(labSmtpTempfail(lab.dir, 'mx1', 'mail'), (e: unknown) => e instanceof LabError && /smtp_client\.port/.test(e.message));
    assert.equal(readFileSync(lab.file, 'utf8'), broken);
  } finally {
    lab.cleanup();
  }
});

function io(): Io & { output: () => string } {
  let out = '';
  return {
    out: (t) => void (out += t),
    err: (t) => void (out += t),
    readStdin: async () => '',
    readStdinBytes: async () => Buffer.alloc(0),
    env: {},
    output: () => out,
  };
}

test('cartero lab fault: usage errors for a bad kind, a bad AT, AT after smtp-ok, missing arguments', async () => {
  const lab = fakeLab(CONFIG);
  try {
    for (const argv of [
      ['fault', 'mx1', 'smtp-broken'],
      ['fault', 'mx1', 'smtp-tempfail', 'helo'],
      ['fault', 'mx1', 'smtp-ok', 'mail'],
      ['fault', 'mx1'],
      ['fault', 'mx1', 'smtp-tempfail', 'mail', 'extra'],
    ]) {
      // main.ts turns a UsageError into the usage text and exit 2
      await assert.rejects(runLab([...argv, '--dir', lab.dir], io()), (e: unknown) => e instanceof UsageError, argv.join(' '));
    }
    const i = io();
    assert.equal(await runLab(['fault', 'mx1', 'smtp-tempfail', 'rcpt', '--dir', lab.dir], i), 0, i.output());
    assert.match(i.output(), /mx1: SMTP answers 451 at rcpt \(from its next start: it is not running\)/);
    const ok = io();
    assert.equal(await runLab(['fault', 'mx1', 'smtp-ok', '--dir', lab.dir], ok), 0, ok.output());
    assert.match(ok.output(), /mx1: SMTP answers normally/);
    await assert.rejects(runLab(['fault', 'mx9', 'smtp-ok', '--dir', lab.dir], io()), (e: unknown) => e instanceof CliError && /no node "mx9"/.test(e.message));
  } finally {
    lab.cleanup();
  }
});
