import assert from 'node:assert/strict';
import { test } from 'node:test';
import { receivedHeader, rfc5322Date, withProtocol } from './trace.js';

const date = new Date(Date.UTC(2024, 2, 5, 9, 4, 5));

test('Received: line with one recipient', () => {
  const h = receivedHeader({ helo: 'client.example', clientAddress: '192.0.2.7', hostname: 'mx.example.test', protocol: 'ESMTPS', id: 'ABC123', recipient: 'bob@example.test', date });
  assert.equal(h, 'Received: from client.example ([192.0.2.7])\r\n\tby mx.example.test (Cartero) with ESMTPS id ABC123\r\n\tfor <bob@example.test>; Tue, 05 Mar 2024 09:04:05 +0000\r\n');
});

test('Received: line without recipient, IPv6 client, hostile HELO', () => {
  const h = receivedHeader({ helo: 'evil)(\r\nX-Injected:', clientAddress: '2001:db8::1', hostname: 'mx', protocol: 'SMTP', id: 'Q', recipient: null, date });
  assert.equal(h, 'Received: from evil____X-Injected: ([IPv6:2001:db8::1])\r\n\tby mx (Cartero) with SMTP id Q;\r\n\tTue, 05 Mar 2024 09:04:05 +0000\r\n');
});

test('with-protocol keywords (RFC 3848, RFC 6531)', () => {
  assert.equal(withProtocol({ esmtp: false, tls: true, auth: true, utf8: false }), 'SMTP');
  assert.equal(withProtocol({ esmtp: true, tls: false, auth: false, utf8: false }), 'ESMTP');
  assert.equal(withProtocol({ esmtp: true, tls: true, auth: true, utf8: false }), 'ESMTPSA');
  assert.equal(withProtocol({ esmtp: true, tls: false, auth: true, utf8: true }), 'UTF8SMTPA');
  assert.equal(rfc5322Date(new Date(Date.UTC(2023, 11, 31, 23, 59, 59))), 'Sun, 31 Dec 2023 23:59:59 +0000');
});
