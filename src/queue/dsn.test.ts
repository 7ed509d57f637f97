import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildDsn, foldField, headerSection, lineClean, replyOf, statusOf, type DsnEntry, type DsnRecipient, type DsnRequest } from './dsn.js';

// ---------------------------------------------------------------- a small, strict reader for what we produce

interface Part {
  headers: Map<string, string>;
  body: Buffer;
}

/** Header fields (unfolded, lowercased names) and the body; every line must end in CRLF. */
function parseEntity(bytes: Buffer): Part {
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'entity has a header/body separator');
  const head = bytes.subarray(0, end).toString('utf8');
  for (const line of head.split('\r\n')) {
    assert.ok(Buffer.byteLength(line) <= 998, `header line within 998 octets: ${line.slice(0, 40)}`);
    assert.doesNotMatch(line, /[\r\n\0]/);
  }
  const headers = new Map<string, string>();
  for (const field of head.replace(/\r\n([ \t])/g, '$1').split('\r\n')) {
    const colon = field.indexOf(':');
    assert.ok(colon > 0, `a header field: ${field}`);
    headers.set(field.slice(0, colon).toLowerCase(), field.slice(colon + 1).trim());
  }
  return { headers, body: bytes.subarray(end + 4) };
}

function boundaryOf(contentType: string): string {
  const m = /boundary="([^"]+)"/.exec(contentType);
  assert.ok(m?.[1], `boundary in ${contentType}`);
  return m[1];
}

/** The parts of a multipart body (RFC 2046 §5.1.1), with the closing delimiter required. */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delim = Buffer.from(`\r\n--${boundary}`);
  const text = Buffer.concat([Buffer.from('\r\n'), body]);
  const parts: Buffer[] = [];
  let pos = text.indexOf(delim);
  assert.ok(pos >= 0, 'first delimiter');
  for (;;) {
    const after = pos + delim.length;
    if (text.subarray(after, after + 2).toString() === '--') break;
    assert.equal(text.subarray(after, after + 2).toString(), '\r\n');
    const next = text.indexOf(delim, after);
    assert.ok(next >= 0, 'closing delimiter present');
    parts.push(text.subarray(after + 2, next));
    pos = next;
  }
  return parts;
}

/** The delivery-status groups: per-message fields, then one map per recipient. */
function statusGroups(body: Buffer): Map<string, string>[] {
  return body
    .toString('utf8')
    .replace(/\r\n([ \t])/g, '$1')
    .split('\r\n\r\n')
    .filter((g) => g.trim() !== '')
    .map((g) => {
      const m = new Map<string, string>();
      for (const line of g.split('\r\n').filter((l) => l !== '')) {
        const c = line.indexOf(':');
        m.set(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
      }
      return m;
    });
}

interface Report {
  top: Part;
  parts: Part[];
  groups: Map<string, string>[];
}

function parseReport(content: Buffer): Report {
  const top = parseEntity(content);
  const ct = top.headers.get('content-type') ?? '';
  assert.match(ct, /^multipart\/report; report-type=delivery-status;/);
  const parts = splitMultipart(top.body, boundaryOf(ct)).map(parseEntity);
  assert.ok(parts.length === 2 || parts.length === 3);
  const status = parts[1]!;
  assert.match(status.headers.get('content-type') ?? '', /^message\/(global-)?delivery-status$/);
  return { top, parts, groups: statusGroups(status.body) };
}

// ---------------------------------------------------------------- fixtures

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const ORIGINAL = Buffer.from(
  'Received: from client (127.0.0.1) by mx.example.test\r\nFrom: alice@sender.test\r\nTo: bob@remote.test\r\nSubject: hello\r\nMessage-ID: <m1@sender.test>\r\n\r\nThe body.\r\n.leading dot\r\n',
);

function entry(meta: Record<string, unknown> = {}, sender = 'alice@sender.test'): DsnEntry {
  return { id: '3F4C81C0AB12345', sender, meta, receivedAt: T0 };
}

function failed(address: string, reason: string, extra: Partial<DsnRecipient> = {}): DsnRecipient {
  return { address, action: 'failed', reason, ...extra };
}

function request(over: Partial<DsnRequest> = {}): DsnRequest {
  return {
    entry: entry(),
    recipients: [failed('bob@remote.test', 'host mx.remote.test[192.0.2.1] said: 550 5.1.1 <bob@remote.test>: user unknown (in reply to RCPT TO command)')],
    reportingMta: 'mx.example.test',
    now: T0 + 3_600_000,
    kind: 'failure',
    returnContent: ORIGINAL,
    ...over,
  };
}

// ---------------------------------------------------------------- tests

describe('buildDsn', () => {
  test('a failure report: envelope, top headers, three parts, delivery-status fields', () => {
    const dsn = buildDsn(request());
    assert.ok(dsn);
    assert.equal(dsn.sender, '');
    assert.deepEqual(dsn.recipients, ['alice@sender.test']);
    assert.deepEqual(dsn.meta, { dsn: 'failure', original_queue_id: '3F4C81C0AB12345', body: '7BIT', smtputf8: false });
    const { top, parts, groups } = parseReport(dsn.content);
    assert.equal(top.headers.get('from'), 'MAILER-DAEMON@mx.example.test (Mail Delivery System)');
    assert.equal(top.headers.get('to'), 'alice@sender.test');
    assert.equal(top.headers.get('subject'), 'Undelivered Mail Returned to Sender');
    assert.equal(top.headers.get('auto-submitted'), 'auto-replied');
    assert.equal(top.headers.get('mime-version'), '1.0');
    assert.equal(top.headers.get('date'), 'Thu, 01 Jan 2026 13:00:00 +0000');
    assert.match(top.headers.get('message-id') ?? '', /^<3F4C81C0AB12345\.failure\.\d+@mx\.example\.test>$/);
    assert.equal(parts.length, 3);
    const text = parts[0]!.body.toString();
    assert.match(parts[0]!.headers.get('content-type') ?? '', /^text\/plain; charset=utf-8/);
    assert.match(text, /^This is the mail system at host mx\.example\.test\.\r\n/);
    assert.match(text, /I'm sorry to have to inform you that your message could not\r\nbe delivered/);
    assert.match(text, /\r\n<bob@remote\.test>: host mx\.remote\.test\[192\.0\.2\.1\] said: 550 5\.1\.1 <bob@remote\.test>: user unknown \(in reply to RCPT TO command\)\r\n/);
    const [perMessage, rcpt] = groups;
    assert.equal(groups.length, 2);
    assert.equal(perMessage?.get('reporting-mta'), 'dns; mx.example.test');
    assert.equal(perMessage?.get('x-cartero-queue-id'), '3F4C81C0AB12345');
    assert.equal(perMessage?.get('arrival-date'), 'Thu, 01 Jan 2026 12:00:00 +0000');
    assert.equal(perMessage?.has('original-envelope-id'), false);
    assert.equal(rcpt?.get('final-recipient'), 'rfc822; bob@remote.test');
    assert.equal(rcpt?.get('action'), 'failed');
    assert.equal(rcpt?.get('status'), '5.1.1');
    assert.equal(rcpt?.get('remote-mta'), 'dns; mx.remote.test');
    assert.equal(rcpt?.get('diagnostic-code'), 'smtp; 550 5.1.1 <bob@remote.test>: user unknown');
    assert.equal(rcpt?.get('last-attempt-date'), 'Thu, 01 Jan 2026 13:00:00 +0000');
    assert.equal(rcpt?.has('original-recipient'), false);
    // RET not given: headers only, without the empty line
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(parts[2]!.body.toString(), headerSection(ORIGINAL).toString());
    assert.doesNotMatch(parts[2]!.body.toString(), /The body/);
  });

  test('RET=FULL returns the whole message as message/rfc822; RET=HDRS the headers', () => {
    const full = parseReport(buildDsn(request({ entry: entry({ ret: 'FULL' }) }))!.content);
    assert.equal(full.parts[2]!.headers.get('content-type'), 'message/rfc822');
    assert.equal(full.parts[2]!.headers.get('content-transfer-encoding'), '7bit');
    assert.deepEqual(full.parts[2]!.body, ORIGINAL);
    const hdrs = parseReport(buildDsn(request({ entry: entry({ ret: 'HDRS' }) }))!.content);
    assert.equal(hdrs.parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(hdrs.parts[2]!.body.toString(), headerSection(ORIGINAL).toString());
  });

  test('ENVID and ORCPT come back as Original-Envelope-Id (xtext) and Original-Recipient; aliases as "expanded from"', () => {
    const dsn = buildDsn(
      request({
        entry: entry({ envid: 'QQ 314159=x' }),
        recipients: [
          failed('bob@remote.test', '550 5.1.1 no such user', { orcpt: 'rfc822;Bob@Remote.test' }),
          failed('carol@example.test', '552 5.2.2 <carol@example.test>: Mailbox full', { original: 'team@example.test' }),
        ],
      }),
    )!;
    const { parts, groups } = parseReport(dsn.content);
    assert.equal(groups[0]?.get('original-envelope-id'), 'QQ+20314159+3Dx');
    assert.equal(groups[1]?.get('original-recipient'), 'rfc822;Bob@Remote.test');
    assert.equal(groups[1]?.get('diagnostic-code'), 'smtp; 550 5.1.1 no such user');
    assert.equal(groups[1]?.has('remote-mta'), false);
    assert.equal(groups[2]?.get('original-recipient'), 'rfc822;team@example.test');
    assert.equal(groups[2]?.get('status'), '5.2.2');
    assert.match(parts[0]!.body.toString(), /<carol@example\.test> \(expanded from <team@example\.test>\): 552 5\.2\.2/);
  });

  test('a reason without a remote reply: X-Cartero diagnostic, status by action, no Remote-MTA', () => {
    const dsn = buildDsn(request({ recipients: [failed('x@remote.test', 'mail for remote.test loops back to myself')] }))!;
    const { groups } = parseReport(dsn.content);
    assert.equal(groups[1]?.get('status'), '5.0.0');
    assert.equal(groups[1]?.get('diagnostic-code'), 'X-Cartero; mail for remote.test loops back to myself');
    assert.equal(groups[1]?.has('remote-mta'), false);
    // an expiry keeps the last temporary status, as Postfix does
    const expired = buildDsn(request({ recipients: [failed('x@remote.test', 'message expired after 432000s in the queue: 451 4.4.1 connection refused')] }))!;
    assert.equal(parseReport(expired.content).groups[1]?.get('status'), '4.4.1');
  });

  test('8-bit original, RET=FULL: message/rfc822 8bit and the report marked 8BITMIME', () => {
    const original = Buffer.concat([Buffer.from('From: a@sender.test\r\nSubject: caf'), Buffer.from([0xe9]), Buffer.from('\r\n\r\nna\xefve latin-1 body\r\n', 'latin1')]);
    const dsn = buildDsn(request({ entry: entry({ ret: 'FULL', body: '8BITMIME' }), returnContent: original }))!;
    assert.equal(dsn.meta.body, '8BITMIME');
    const { top, parts } = parseReport(dsn.content);
    assert.equal(top.headers.get('content-transfer-encoding'), '8bit');
    assert.equal(parts[2]!.headers.get('content-transfer-encoding'), '8bit');
    assert.deepEqual(parts[2]!.body, original);
  });

  test('SMTPUTF8 original: message/global, global-delivery-status, UTF-8 addresses kept', () => {
    const original = Buffer.from('From: Jos\u00e9 <jos\u00e9@sender.test>\r\nTo: m\u00fcller@remote.test\r\nSubject: \u00a1hola!\r\n\r\ncuerpo \u00f1\r\n');
    const dsn = buildDsn(
      request({
        entry: entry({ ret: 'FULL', smtputf8: true }, 'jos\u00e9@sender.test'),
        recipients: [failed('m\u00fcller@remote.test', '550 5.1.1 unknown user m\u00fcller')],
        returnContent: original,
      }),
    )!;
    assert.equal(dsn.meta.smtputf8, true);
    assert.equal(dsn.meta.body, '8BITMIME');
    assert.deepEqual(dsn.recipients, ['jos\u00e9@sender.test']);
    const { top, parts, groups } = parseReport(dsn.content);
    assert.equal(top.headers.get('to'), 'jos\u00e9@sender.test');
    assert.equal(parts[1]!.headers.get('content-type'), 'message/global-delivery-status');
    assert.equal(parts[2]!.headers.get('content-type'), 'message/global');
    assert.equal(groups[1]?.get('final-recipient'), 'rfc822; m\u00fcller@remote.test');
    assert.equal(groups[1]?.get('diagnostic-code'), 'smtp; 550 5.1.1 unknown user m\u00fcller');
    assert.match(parts[0]!.body.toString('utf8'), /<m\u00fcller@remote\.test>: 550 5\.1\.1 unknown user m\u00fcller/);
    // RET=HDRS with SMTPUTF8: message/global-headers
    const hdrs = parseReport(buildDsn(request({ entry: entry({ smtputf8: true }, 'jos\u00e9@sender.test'), returnContent: original }))!.content);
    assert.equal(hdrs.parts[2]!.headers.get('content-type'), 'message/global-headers');
  });

  test('non-ASCII in a reason of a non-UTF8 message is replaced, never written raw', () => {
    const dsn = buildDsn(request({ recipients: [failed('bob@remote.test', '550 5.7.1 r\u00e9jet\u00e9 \u2603')] }))!;
    assert.equal(dsn.meta.body, '7BIT');
    assert.doesNotMatch(dsn.content.toString('latin1'), /[^\x00-\x7f]/);
    assert.equal(parseReport(dsn.content).groups[1]?.get('diagnostic-code'), 'smtp; 550 5.7.1 r?jet? ?');
  });

  test('a huge original with RET=FULL: only its headers come back, with a note', () => {
    const big = Buffer.concat([Buffer.from('From: a@sender.test\r\nSubject: big\r\n\r\n'), Buffer.alloc(200_000, 'x\r\n')]);
    const dsn = buildDsn(request({ entry: entry({ ret: 'FULL' }), returnContent: big }))!;
    assert.ok(dsn.content.length < 10_000);
    const { parts } = parseReport(dsn.content);
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(parts[2]!.body.toString(), 'From: a@sender.test\r\nSubject: big\r\n');
    assert.match(parts[0]!.body.toString(), /only its headers are attached/);
  });

  test('huge headers are cut at a whole line within the limit', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(60)}\r\n`).join('');
    const big = Buffer.from(`From: a@sender.test\r\n${lines}\r\nbody\r\n`);
    const dsn = buildDsn(request({ returnContent: big, returnLimit: 50_000 }))!;
    const { parts } = parseReport(dsn.content);
    const returned = parts[2]!.body;
    assert.ok(returned.length <= 50_000 && returned.length > 49_000, `returned ${returned.length}`);
    assert.ok(returned.toString().endsWith('\r\n'));
    assert.ok(lineClean(returned));
    assert.match(parts[0]!.body.toString(), /cut at 50000 bytes/);
  });

  test('an original with bare LF, NUL or a BINARYMIME body is never returned whole', () => {
    for (const [meta, content] of [
      [{ ret: 'FULL' }, Buffer.from('From: a@sender.test\r\n\r\nbare\nlf\r\n')],
      [{ ret: 'FULL' }, Buffer.from('From: a@sender.test\r\n\r\nnul\0here\r\n')],
      [{ ret: 'FULL' }, Buffer.from(`From: a@sender.test\r\n\r\n${'z'.repeat(1200)}\r\n`)],
      [{ ret: 'FULL', body: 'BINARYMIME' }, Buffer.from('From: a@sender.test\r\n\r\nok\r\n')],
    ] as const) {
      const { parts } = parseReport(buildDsn(request({ entry: entry({ ...meta }), returnContent: content }))!.content);
      assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
      assert.equal(parts[2]!.body.toString(), 'From: a@sender.test\r\n');
    }
    // headers holding bare CR/LF and NUL are normalised
    const hostile = Buffer.from('From: a@sender.test\nX-A: b\rX-B: c\0d\r\n\r\nbody');
    const { parts } = parseReport(buildDsn(request({ returnContent: hostile }))!.content);
    assert.equal(parts[2]!.body.toString(), 'From: a@sender.test\r\nX-A: b\r\nX-B: cd\r\n');
  });

  test('the boundary never occurs in the returned message', () => {
    const req = request({ entry: entry({ ret: 'FULL' }) });
    const first = buildDsn(req)!;
    const boundary = boundaryOf(parseEntity(first.content).headers.get('content-type') ?? '');
    const trap = Buffer.concat([ORIGINAL, Buffer.from(`--${boundary}\r\n--${boundary}=1\r\n`)]);
    const again = buildDsn({ ...req, returnContent: trap })!;
    const b2 = boundaryOf(parseEntity(again.content).headers.get('content-type') ?? '');
    assert.equal(b2, `${boundary}=2`);
    const { parts } = parseReport(again.content);
    assert.deepEqual(parts[2]!.body, trap);
  });

  test('hostile text: CR/LF in reasons and addresses cannot inject headers; long reasons fold and stay bounded', () => {
    const evil = 'x@remote.test\r\nBcc: victim@evil.test';
    const dsn = buildDsn(
      request({
        entry: entry({ envid: 'id\r\nX-Injected: 1' }),
        recipients: [failed(evil, `550 5.0.0 ${'long words '.repeat(500)}\r\nX-Injected: yes`)],
      }),
    )!;
    const { top, groups } = parseReport(dsn.content);
    assert.equal(top.headers.has('bcc'), false);
    assert.equal(groups.every((g) => !g.has('x-injected') && !g.has('bcc')), true);
    assert.ok((groups[1]?.get('diagnostic-code')?.length ?? 0) <= 820);
    for (const line of dsn.content.toString().split('\r\n')) assert.ok(line.length <= 998);
    assert.ok(lineClean(dsn.content.subarray(0, dsn.content.indexOf('--3F4C'))));
  });

  test('delay warning: Action delayed, 4.x.x status, Will-Retry-Until, headers only even with RET=FULL', () => {
    const dsn = buildDsn(
      request({
        kind: 'delay',
        entry: entry({ ret: 'FULL' }),
        now: T0 + 4 * 3_600_000,
        retryUntil: T0 + 5 * 86_400_000,
        recipients: [{ address: 'bob@remote.test', action: 'delayed', reason: 'connect to mx.remote.test[192.0.2.1]:25: Connection refused' }],
      }),
    )!;
    const { top, parts, groups } = parseReport(dsn.content);
    assert.equal(top.headers.get('subject'), 'Delayed Mail (still being retried)');
    assert.match(parts[0]!.body.toString(), /THIS IS A WARNING ONLY/);
    assert.match(parts[0]!.body.toString(), /could not be delivered for 4\.0 hours\.\r\nIt will be retried until it is 5\.0 days old\./);
    assert.equal(groups[1]?.get('action'), 'delayed');
    assert.equal(groups[1]?.get('status'), '4.0.0');
    assert.equal(groups[1]?.get('will-retry-until'), 'Tue, 06 Jan 2026 12:00:00 +0000');
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
  });

  test('success report: delivered and relayed, 2.0.0, no diagnostic for a mailbox delivery', () => {
    const dsn = buildDsn(
      request({
        kind: 'success',
        recipients: [
          { address: 'bob@example.test', action: 'delivered', reason: 'delivered to mailbox' },
          { address: 'eve@remote.test', action: 'relayed', reason: 'host mx.remote.test[192.0.2.1] said: 250 2.0.0 Ok: queued as 12345' },
        ],
      }),
    )!;
    const { top, groups } = parseReport(dsn.content);
    assert.equal(top.headers.get('subject'), 'Successful Mail Delivery Report');
    assert.equal(groups[1]?.get('action'), 'delivered');
    assert.equal(groups[1]?.get('status'), '2.0.0');
    assert.equal(groups[1]?.has('diagnostic-code'), false);
    assert.equal(groups[2]?.get('action'), 'relayed');
    assert.equal(groups[2]?.get('diagnostic-code'), 'smtp; 250 2.0.0 Ok: queued as 12345');
    assert.equal(groups[2]?.get('remote-mta'), 'dns; mx.remote.test');
  });

  test('no report for a null sender or an empty recipient list; no third part without content', () => {
    assert.equal(buildDsn(request({ entry: entry({}, '') })), null);
    assert.equal(buildDsn(request({ recipients: [] })), null);
    const req = request();
    delete req.returnContent;
    assert.equal(parseReport(buildDsn(req)!.content).parts.length, 2);
  });
});

describe('dsn helpers', () => {
  test('statusOf and replyOf', () => {
    assert.equal(statusOf('452 4.2.2 <x>: Mailbox full', 'failed'), '4.2.2');
    assert.equal(statusOf('550 user unknown', 'failed'), '5.0.0');
    assert.equal(statusOf('421 service not available', 'delayed'), '4.0.0');
    assert.equal(statusOf('554 5.4.6 loop', 'delayed'), '4.4.6');
    assert.equal(statusOf('250 2.1.5 Ok', 'delivered'), '2.1.5');
    assert.equal(statusOf('version 1.2.3 of something', 'failed'), '5.0.0');
    assert.equal(replyOf('host a.test[192.0.2.9] said: 554 5.7.1 no (in reply to end of DATA command)'), '554 5.7.1 no');
    assert.equal(replyOf('connect to a.test: timed out'), null);
  });

  test('foldField folds at white space under 78 columns', () => {
    const folded = foldField('Diagnostic-Code', `smtp; ${'word '.repeat(40)}`);
    const lines = folded.split('\r\n').filter((l) => l !== '');
    assert.ok(lines.length > 1);
    for (const l of lines) assert.ok(l.length <= 78);
    assert.ok(lines.slice(1).every((l) => l.startsWith('\t')));
  });
});
