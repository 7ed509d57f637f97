import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeXtext, encodeXtext } from './xtext.js';

test('xtext decoding', () => {
  assert.equal(decodeXtext('plain'), 'plain');
  assert.equal(decodeXtext('a+2Bb+3Dc'), 'a+b=c');
  assert.equal(decodeXtext('a+2bb'), 'a+b');
  assert.equal(decodeXtext('a+2'), null);
  assert.equal(decodeXtext('a+GG'), null);
  assert.equal(decodeXtext('a=b'), null);
  assert.equal(decodeXtext('a b'), null);
  assert.equal(decodeXtext('+C3+A9'), 'é');
  assert.equal(decodeXtext('+C3'), null);
  assert.equal(decodeXtext('jörg'), 'jörg');
});

test('xtext encoding round-trips', () => {
  assert.equal(encodeXtext('a+b=c d'), 'a+2Bb+3Dc+20d');
  for (const s of ['', 'x', 'user+tag@example.test', 'é€😀', '\u0001\u007f']) assert.equal(decodeXtext(encodeXtext(s)) ?? '', s);
});
