import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as packet from 'dns-packet';
import { answerQuery } from './authority.js';
import { interpretResponse } from './response.js';

const decode = (p: packet.Packet) => packet.decode(packet.encode(p));
const soa: packet.Answer = { type: 'SOA', name: 'test', ttl: 120, data: { mname: 'ns.test', rname: 'h.test', minimum: 30 } };

test('records of the asked type for the asked name, TTL is the smallest', () => {
  const p = decode({
    type: 'response', id: 7, questions: [{ type: 'MX', name: 'Example.TEST' }],
    answers: [
      { type: 'MX', name: 'example.test', ttl: 300, data: { preference: 10, exchange: 'MX1.example.test.' } },
      { type: 'MX', name: 'example.test', ttl: 60, data: { preference: 20, exchange: 'mx2.example.test' } },
      { type: 'A', name: 'example.test', ttl: 5, data: '127.0.0.9' },
      { type: 'MX', name: 'other.test', ttl: 1, data: { preference: 1, exchange: 'evil.test' } },
    ],
  });
  const v = interpretResponse(p, 7, 'example.test', 'MX');
  assert.deepEqual(v, { kind: 'result', result: { kind: 'ok', ttl: 60, records: [{ preference: 10, exchange: 'mx1.example.test' }, { preference: 20, exchange: 'mx2.example.test' }] } });
});

test('NXDOMAIN and NODATA carry the RFC 2308 negative TTL: min(SOA TTL, MINIMUM); no SOA → 0', () => {
  const nx = decode({ type: 'response', id: 1, flags: 3, questions: [{ type: 'A', name: 'x.test' }], authorities: [soa] });
  assert.deepEqual(interpretResponse(nx, 1, 'x.test', 'A'), { kind: 'result', result: { kind: 'nxdomain', ttl: 30 } });
  const nodata = decode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'x.test' }] });
  assert.deepEqual(interpretResponse(nodata, 1, 'x.test', 'A'), { kind: 'result', result: { kind: 'nodata', ttl: 0 } });
});

test('SERVFAIL/REFUSED are server failures; wrong id or question is a mismatch; TC is truncated', () => {
  const q = [{ type: 'A' as const, name: 'x.test' }];
  assert.equal(interpretResponse(decode({ type: 'response', id: 1, flags: 2, questions: q }), 1, 'x.test', 'A').kind, 'server_failure');
  assert.equal(interpretResponse(decode({ type: 'response', id: 1, flags: 5, questions: q }), 1, 'x.test', 'A').kind, 'server_failure');
  assert.equal(interpretResponse(decode({ type: 'response', id: 2, questions: q }), 1, 'x.test', 'A').kind, 'mismatch');
  assert.equal(interpretResponse(decode({ type: 'response', id: 1, questions: q }), 1, 'y.test', 'A').kind, 'mismatch');
  assert.equal(interpretResponse(decode({ type: 'response', id: 1, questions: q }), 1, 'x.test', 'MX').kind, 'mismatch');
  assert.equal(interpretResponse(decode({ type: 'query', id: 1, questions: q }), 1, 'x.test', 'A').kind, 'mismatch');
  assert.equal(interpretResponse(decode({ type: 'response', id: 1, flags: packet.TRUNCATED_RESPONSE, questions: q }), 1, 'x.test', 'A').kind, 'truncated');
});

test('a CNAME chain in the answer is followed to the target records; a CNAME loop ends as NODATA', () => {
  const p = decode({
    type: 'response', id: 3, questions: [{ type: 'A', name: 'www.test' }],
    answers: [
      { type: 'CNAME', name: 'www.test', ttl: 100, data: 'host.test' },
      { type: 'A', name: 'host.test', ttl: 50, data: '127.0.0.7' },
    ],
  });
  assert.deepEqual(interpretResponse(p, 3, 'www.test', 'A'), { kind: 'result', result: { kind: 'ok', records: ['127.0.0.7'], ttl: 50 } });
  const loop = decode({
    type: 'response', id: 3, questions: [{ type: 'A', name: 'a.test' }],
    answers: [
      { type: 'CNAME', name: 'a.test', ttl: 100, data: 'b.test' },
      { type: 'CNAME', name: 'b.test', ttl: 100, data: 'a.test' },
    ],
  });
  assert.deepEqual(interpretResponse(loop, 3, 'a.test', 'A'), { kind: 'result', result: { kind: 'nodata', ttl: 0 } });
});

test('TXT strings are joined; null MX target "." becomes ""', () => {
  const p = decode({ type: 'response', id: 4, questions: [{ type: 'TXT', name: 't.test' }], answers: [{ type: 'TXT', name: 't.test', ttl: 9, data: ['v=spf1 ', '-all'] }] });
  assert.deepEqual(interpretResponse(p, 4, 't.test', 'TXT'), { kind: 'result', result: { kind: 'ok', records: ['v=spf1 -all'], ttl: 9 } });
  const n = decode({ type: 'response', id: 4, questions: [{ type: 'MX', name: 'n.test' }], answers: [{ type: 'MX', name: 'n.test', ttl: 9, data: { preference: 0, exchange: '.' } }] });
  assert.deepEqual(interpretResponse(n, 4, 'n.test', 'MX'), { kind: 'result', result: { kind: 'ok', records: [{ preference: 0, exchange: '' }], ttl: 9 } });
});

test('authority answers: NXDOMAIN with SOA, NODATA with SOA, data, faults', () => {
  const zone = { 'example.test': { MX: [{ preference: 5, exchange: 'mx.example.test' }], ttl: 77 }, 'mx.example.test': { A: ['127.0.0.2'] } };
  const ask = (name: string, type: packet.RecordType, faults = {}) => {
    const out = answerQuery(decode({ type: 'query', id: 9, questions: [{ type, name }] }), zone, faults, 42);
    return out ? packet.decode(out) : null;
  };
  const mx = ask('EXAMPLE.test', 'MX')!;
  assert.deepEqual(interpretResponse(mx, 9, 'example.test', 'MX'), { kind: 'result', result: { kind: 'ok', records: [{ preference: 5, exchange: 'mx.example.test' }], ttl: 77 } });
  assert.deepEqual(interpretResponse(ask('nope.test', 'MX')!, 9, 'nope.test', 'MX'), { kind: 'result', result: { kind: 'nxdomain', ttl: 42 } });
  assert.deepEqual(interpretResponse(ask('example.test', 'A')!, 9, 'example.test', 'A'), { kind: 'result', result: { kind: 'nodata', ttl: 42 } });
  assert.equal(ask('example.test', 'A', { 'example.test': 'drop' }), null);
  assert.equal(interpretResponse(ask('example.test', 'A', { 'example.test': 'servfail' })!, 9, 'example.test', 'A').kind, 'server_failure');
  assert.throws(() => packet.decode(answerQuery(decode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'example.test' }] }), zone, { 'example.test': 'garbage' }, 1)!));
});
