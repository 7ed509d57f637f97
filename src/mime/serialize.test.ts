import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserializeStructure, imapBodyStructure, MimeError, parseStructure, serializeStructure } from './index.js';

const msg = Buffer.from(
  'From: "A" <a@example.test>\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: inline\r\n\r\nx\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nTo: undisclosed:;\r\n\r\ny\r\n--b--\r\n',
);

test('round trip: what is read back is what was parsed, and renders the same', () => {
  const s = parseStructure(msg);
  const json = serializeStructure(s);
  assert.ok(!json.includes(':null'), 'null members are left out');
  const back = deserializeStructure(json);
  assert.deepEqual(back, s);
  assert.equal(imapBodyStructure(back, true), imapBodyStructure(s, true));
  assert.deepEqual(back.root.parts?.[1]?.message?.envelope.to, [[null, null, 'undisclosed', null], [null, null, null, null]]);
});

test('garbage is a MimeError, never a half-read structure', () => {
  const good = JSON.parse(serializeStructure(parseStructure(msg))) as Record<string, unknown>;
  const bad = [
    '',
    'not json',
    'null',
    '[]',
    JSON.stringify({ ...good, version: 2 }),
    JSON.stringify({ ...good, root: { ...(good.root as object), bodyStart: -1 } }),
    JSON.stringify({ ...good, root: { ...(good.root as object), end: 0 } }),
    JSON.stringify({ ...good, root: { ...(good.root as object), parts: [] } }),
    JSON.stringify({ ...good, root: { ...(good.root as object), params: [['a']] } }),
    JSON.stringify({ ...good, envelope: { from: [['a', null, 'b']] } }),
    '{"version":1,"envelope":{},"root":' + '{"headerStart":0,"bodyStart":0,"end":0,"type":"t","subtype":"s","params":[],"lines":0,"parts":['.repeat(500) + '0' + ']}'.repeat(500) + '}',
    '['.repeat(100_000),
  ];
  for (const json of bad) assert.throws(() => deserializeStructure(json), MimeError, json.slice(0, 80));
});
