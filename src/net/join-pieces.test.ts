import assert from 'node:assert/strict';
import { test } from 'node:test';
import { joinPieces } from './join-pieces.js';

test('text (UTF-8) and bytes come out end to end, exactly', () => {
  const bytes = Buffer.from([0, 255, 13, 10, 0x80]);
  const joined = joinPieces(['* 1 FETCH (BODY[] {5}\r\n', bytes, ')\r\n', 'Grüße ✓\r\n', Buffer.alloc(0), '']);
  assert.deepEqual(joined, Buffer.concat([Buffer.from('* 1 FETCH (BODY[] {5}\r\n'), bytes, Buffer.from(')\r\nGrüße ✓\r\n', 'utf8')]));
  assert.equal(joinPieces([]).length, 0);
});
