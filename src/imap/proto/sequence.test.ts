import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSet, parseSequenceSet, resolveAgainst, resolveSeqIndexes, seqOutOfRange } from './sequence.js';

test('parses numbers, ranges, * and $', () => {
  assert.deepEqual(parseSequenceSet('1:3,7,9:*'), { saved: false, ranges: [{ from: 1, to: 3 }, { from: 7, to: 7 }, { from: 9, to: '*' }] });
  assert.deepEqual(parseSequenceSet('$'), { saved: true });
  assert.deepEqual(parseSequenceSet('*:4'), { saved: false, ranges: [{ from: '*', to: 4 }] });
});

for (const bad of ['0', '1:0', '*:*:*', '', '1,,2', 'a', '-1', '4294967296', '1:2:3', '01x', '$,1']) {
  test(`rejects sequence set ${JSON.stringify(bad)}`, () => {
    assert.throws(() => parseSequenceSet(bad));
  });
}

test('resolves UID sets against the known UIDs (reversed ranges too)', () => {
  const uids = [2, 4, 6, 8, 10];
  const set = parseSequenceSet('5:1,8,9:*');
  assert.ok(!set.saved);
  if (!set.saved) assert.deepEqual(resolveAgainst(set.ranges, uids), [2, 4, 8, 10]);
  const star = parseSequenceSet('*');
  if (!star.saved) {
    assert.deepEqual(resolveAgainst(star.ranges, uids), [10]);
    assert.deepEqual(resolveAgainst(star.ranges, []), []);
  }
});

test('UID * beyond the last UID still names the last message (RFC 9051 §6.4.8)', () => {
  const set = parseSequenceSet('100:*');
  if (!set.saved) assert.deepEqual(resolveAgainst(set.ranges, [1, 2, 3]), [3]);
});

test('resolves message numbers to indexes without duplicates', () => {
  const set = parseSequenceSet('2:3,1:2,*');
  if (!set.saved) {
    assert.deepEqual(resolveSeqIndexes(set.ranges, 5), [0, 1, 2, 4]);
    assert.equal(seqOutOfRange(set.ranges, 5), false);
    assert.equal(seqOutOfRange(parseSeq('6'), 5), true);
  }
});

function parseSeq(s: string) {
  const set = parseSequenceSet(s);
  if (set.saved) throw new Error('saved');
  return set.ranges;
}

test('formats compact sets', () => {
  assert.equal(formatSet([1, 2, 3, 5, 7, 8]), '1:3,5,7:8');
  assert.equal(formatSet([]), '');
});
