import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressList, canonicalAddress, inputLines, parseSendmailArgs, prepareMessage, SendmailError, type PrepareOptions } from './sendmail-input.js';

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SendmailError, String(err));
    return err.exitCode;
  }
  assert.fail('expected a SendmailError');
}

describe('parseSendmailArgs', () => {
  test('the options cron and scripts pass: bundles, attached and separate values, ignored ones', () => {
    const o = parseSendmailArgs(['-oi', '-odi', '-oem', '-t', '-fbob@x.test', '-F', 'Bob Q', '-v', '-G', '-Lx', '--', '-odd@x.test']);
    assert.equal(o.ignoreDots, true);
    assert.equal(o.extractRecipients, true);
    assert.equal(o.sender, 'bob@x.test');
    assert.equal(o.fullName, 'Bob Q');
    assert.equal(o.verbose, true);
    assert.deepEqual(o.recipients, ['-odd@x.test']);
    assert.deepEqual(o.ignored, ['-odi', '-oem', '-G', '-L x']);
    const b = parseSendmailArgs(['-ti', '-f', '<>', 'a@x.test', 'b@x.test', '-N', 'success,failure', '-R', 'hdrs', '-V', 'env1', '-c', 'f.yaml']);
    assert.deepEqual([b.extractRecipients, b.ignoreDots, b.sender, b.recipients, b.notify, b.ret, b.envid, b.config], [true, true, '<>', ['a@x.test', 'b@x.test'], ['SUCCESS', 'FAILURE'], 'HDRS', 'env1', 'f.yaml']);
    assert.equal(parseSendmailArgs(['-bp']).mode, 'list');
    assert.equal(parseSendmailArgs(['-q']).mode, 'flush');
    assert.equal(parseSendmailArgs(['-q30m']).mode, 'flush');
    assert.equal(parseSendmailArgs(['-bm', 'a@x.test']).mode, 'deliver');
    assert.equal(parseSendmailArgs(['-bs']).mode, 'smtp');
    assert.equal(parseSendmailArgs(['-b', 's', '-c', 'f.yaml']).mode, 'smtp');
  });

  test('unknown, unsupported and malformed options are usage errors (64)', () => {
    for (const argv of [['-Z'], ['-bd'], ['-bz'], ['-I'], ['-f'], ['-N', 'never,success'], ['-N', 'sometimes'], ['-R', 'all'], ['-B', 'BINARYMIME'], ['-V', 'has space'], ['--frob'], ['-qRexample.test']]) {
      assert.equal(code(() => parseSendmailArgs(argv)), 64, argv.join(' '));
    }
  });
});

describe('addressList', () => {
  test('display names, comments, groups, quoted local parts, routes', () => {
    assert.deepEqual(addressList(' "Doe, John" <john@x.test>, jane@y.test (Jane, Doe) , Team: a@z.test, <b@z.test>; ,, <@r1,@r2:c@w.test>'), [
      'john@x.test',
      'jane@y.test',
      'a@z.test',
      'b@z.test',
      'c@w.test',
    ]);
    assert.deepEqual(addressList('undisclosed-recipients:;'), []);
    assert.deepEqual(addressList('"odd name"@x.test, d@[192.0.2.1]'), ['"odd name"@x.test', 'd@[192.0.2.1]']);
  });

  test('unbalanced quotes, comments, brackets: data errors (65)', () => {
    for (const text of ['"open@x.test', '<open@x.test', 'a@x.test (comment', 'a@[1.2.3.4']) assert.equal(code(() => addressList(text)), 65, text);
  });

  test('canonicalAddress qualifies bare names and refuses bad syntax', () => {
    assert.equal(canonicalAddress('root', 'mx.example.test', 64), 'root@mx.example.test');
    assert.equal(canonicalAddress('<Bob@Example.TEST>', 'h', 64), 'Bob@example.test');
    for (const bad of ['a@', 'a b@x.test', '@x.test', 'a@b@c', 'a@x..test', `${'l'.repeat(300)}@x.test`]) assert.equal(code(() => canonicalAddress(bad, 'h', 64)), 64, bad);
  });
});

const BASE: PrepareOptions = {
  ignoreDots: false,
  extractRecipients: false,
  sender: 'cron@mx.example.test',
  fullName: null,
  hostname: 'mx.example.test',
  user: 'cron',
  uid: 1000,
  now: Date.UTC(2026, 0, 1),
  uniqueId: 'u1',
  sizeLimit: 100_000,
};

describe('prepareMessage', () => {
  test('LF input becomes CRLF; Received, From, Date, Message-ID added when missing', () => {
    const p = prepareMessage(Buffer.from('Subject: report\n\nline 1\nline 2\n'), BASE);
    assert.equal(
      p.content.toString(),
      'Received: by mx.example.test (Cartero sendmail, from userid 1000);\r\n\tThu, 01 Jan 2026 00:00:00 +0000\r\n' +
        'From: cron@mx.example.test\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <u1@mx.example.test>\r\n' +
        'Subject: report\r\n\r\nline 1\r\nline 2\r\n',
    );
    assert.equal(p.eightBit, false);
  });

  test('present From/Date/Message-ID are kept; -F gives a display name (quoted or encoded)', () => {
    const kept = prepareMessage(Buffer.from('From: a@x.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <k@x>\r\n\r\nb\r\n'), BASE).content.toString();
    assert.equal((kept.match(/^From:/gm) ?? []).length, 1);
    assert.equal((kept.match(/^Message-ID:/gm) ?? []).length, 1);
    assert.match(prepareMessage(Buffer.from('\nb\n'), { ...BASE, fullName: 'Cron Daemon' }).content.toString(), /^From: Cron Daemon <cron@mx\.example\.test>\r$/m);
    assert.match(prepareMessage(Buffer.from('\nb\n'), { ...BASE, fullName: 'Doe, J.' }).content.toString(), /^From: "Doe, J\." <cron@mx\.example\.test>\r$/m);
    assert.match(prepareMessage(Buffer.from('\nb\n'), { ...BASE, fullName: 'Jos\u00e9\r\nBcc: x@evil.test' }).content.toString(), /^From: =\?UTF-8\?Q\?Jos=C3=A9_Bcc=3A_x=40evil=2Etest\?= <cron@mx\.example\.test>\r$/m);
  });

  test('a lone "." ends the input unless -i; nothing after it is queued', () => {
    const raw = Buffer.from('Subject: s\n\nbefore\n.\nafter\n');
    assert.doesNotMatch(prepareMessage(raw, BASE).content.toString(), /after/);
    assert.match(prepareMessage(raw, { ...BASE, ignoreDots: true }).content.toString(), /before\r\n\.\r\nafter\r\n$/);
    assert.deepEqual(inputLines(Buffer.from('a\r\n.\r\nb'), false).map(String), ['a']);
    assert.deepEqual(inputLines(Buffer.from('a\n..\nb'), false).map(String), ['a', '..', 'b']);
  });

  test('-t: recipients from To/Cc/Bcc, Bcc removed; Resent-* take over when present', () => {
    const raw = Buffer.from('To: a@x.test,\n  "B" <b@x.test>\nCc: c@x.test\nBcc: hidden@x.test\nSubject: s\n\nbody\n');
    const p = prepareMessage(raw, { ...BASE, extractRecipients: true });
    assert.deepEqual(p.headerRecipients, ['a@x.test', 'b@x.test', 'c@x.test', 'hidden@x.test']);
    assert.doesNotMatch(p.content.toString(), /Bcc|hidden/);
    assert.match(p.content.toString(), /To: a@x\.test,\r\n  "B" <b@x\.test>\r\n/);
    const resent = prepareMessage(Buffer.from('To: old@x.test\nResent-To: new@x.test\nResent-Bcc: rb@x.test\n\nb\n'), { ...BASE, extractRecipients: true });
    assert.deepEqual(resent.headerRecipients, ['new@x.test', 'rb@x.test']);
    assert.doesNotMatch(resent.content.toString(), /Resent-Bcc/);
    assert.equal(code(() => prepareMessage(Buffer.from('To: a@@x\n\nb\n'), { ...BASE, extractRecipients: true })), 65);
  });

  test('no header section: the input is all body behind an empty line', () => {
    const p = prepareMessage(Buffer.from('just text\nmore: text\n'), BASE).content.toString();
    assert.match(p, /Message-ID: <u1@mx\.example\.test>\r\n\r\njust text\r\nmore: text\r\n$/);
  });

  test('NUL, bare CR and oversize are data errors (65); 8-bit is noted', () => {
    assert.equal(code(() => prepareMessage(Buffer.from('Subject: a\n\nnul\0\n'), BASE)), 65);
    assert.equal(code(() => prepareMessage(Buffer.from('Subject: a\n\nbare\rcr\n'), BASE)), 65);
    assert.equal(code(() => prepareMessage(Buffer.from('Subject: a\r\r\n\r\nx\n'), BASE)), 65);
    assert.equal(code(() => prepareMessage(Buffer.alloc(2000, 'a\n'), { ...BASE, sizeLimit: 1000 })), 65);
    assert.equal(prepareMessage(Buffer.from('Subject: caf\u00e9\n\n\u00e9\n'), BASE).eightBit, true);
  });
});
