/*
 * Real SMTP clients against the server on loopback, with fake services: Python smtplib (plain, pipelined,
 * STARTTLS, AUTH PLAIN and LOGIN on a submission listener) and nodemailer (plain, STARTTLS + AUTH,
 * implicit TLS). Each stored message is compared byte for byte with what the client sent.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { addedPrefix, RECEIVED_LINE } from './fake-services.js';
import { startTestServer, type TestServer } from './env.js';

const SCRIPT = fileURLToPath(new URL('./smtplib_client.py', import.meta.url));

interface PyResult {
  ehlo?: string[];
  ehlo_tls?: string[];
  refused?: Record<string, [number, string]>;
  replies?: string[];
  quit?: number;
  error?: string;
}

function smtplib(job: Record<string, unknown>): Promise<PyResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`smtplib client exited ${code}: ${err}`));
      resolve(JSON.parse(out) as PyResult);
    });
    child.stdin.end(JSON.stringify(job));
  });
}

/** A message with the things that go wrong in transit: leading dots, 8-bit bytes, a long line, blank lines. */
function message(subject: string, headers = 'Date: Tue, 05 Mar 2024 09:04:05 +0000\r\nMessage-ID: <m1@client.example>\r\n'): Buffer {
  return Buffer.concat([
    Buffer.from(`From: alice@example.test\r\nTo: bob@example.test\r\nSubject: ${subject}\r\n${headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`),
    Buffer.from('.leading dot\r\n..two dots\r\n.\r\n\r\n\r\nGrüße, ¡olé!\r\n'),
    Buffer.from(`${'x'.repeat(900)}\r\n-- \r\nend\r\n`),
  ]);
}

let env: TestServer;

before(async () => {
  env = await startTestServer({ tls: true, listeners: [{ name: 'mx' }, { name: 'submission', submission: true }, { name: 'smtps', submission: true, tls: 'implicit' }] });
});

after(async () => {
  await env.close();
});

function lastCommit(count: number) {
  assert.equal(env.services.commits.length, count);
  return env.services.commits[count - 1]!;
}

test('smtplib: plain ESMTP to a local recipient, stored byte for byte', async () => {
  const n = env.services.commits.length;
  const msg = message('smtplib plain');
  const r = await smtplib({ port: env.port('mx'), from: 'carol@remote.test', to: ['bob@example.test'], message: msg.toString('base64') });
  assert.deepEqual(r.refused, {});
  assert.equal(r.quit, 221);
  for (const f of ['8bitmime', 'chunking', 'dsn', 'enhancedstatuscodes', 'pipelining', 'size', 'smtputf8', 'starttls']) assert.ok(r.ehlo?.includes(f), f);
  assert.ok(r.ehlo?.includes('auth'), 'AUTH without TLS is offered on loopback only');
  const c = lastCommit(n + 1);
  assert.match(addedPrefix(c.content, msg), RECEIVED_LINE);
  assert.match(c.content.toString(), /^Received: from pyclient\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Cartero\) with ESMTP id/);
});

test('smtplib: pipelined MAIL/RCPT/DATA in one write', async () => {
  const n = env.services.commits.length;
  const msg = message('smtplib pipelined');
  const r = await smtplib({ mode: 'pipelined', port: env.port('mx'), from: 'carol@remote.test', to: ['bob@example.test', 'nobody@example.test', 'alice@example.test'], message: msg.toString('base64') });
  assert.deepEqual(r.replies?.map((l) => l.slice(0, 9)), ['250 2.1.0', '250 2.1.5', '550 5.1.1', '250 2.1.5', '354 End d', '250 2.0.0', '221 2.0.0']);
  const c = lastCommit(n + 1);
  addedPrefix(c.content, msg);
  assert.deepEqual(c.envelope.recipients.map((x) => x.address), ['bob@example.test', 'alice@example.test']);
});

test('smtplib: STARTTLS, then the message goes over TLS', async () => {
  const n = env.services.commits.length;
  const msg = message('smtplib starttls');
  const r = await smtplib({ mode: 'starttls', port: env.port('mx'), from: 'carol@remote.test', to: ['bob@example.test'], message: msg.toString('base64') });
  assert.deepEqual(r.refused, {});
  assert.ok(!r.ehlo_tls?.includes('starttls'));
  const c = lastCommit(n + 1);
  assert.match(addedPrefix(c.content, msg), /with ESMTPS id/);
  assert.equal(c.envelope.meta['tls'], true);
});

test('smtplib: AUTH PLAIN and AUTH LOGIN on the submission listener; Date and Message-ID added', async () => {
  const n = env.services.commits.length;
  const bare = message('smtplib submission', '');
  const plain = await smtplib({ mode: 'starttls', port: env.port('submission'), auth: { mechanism: 'PLAIN', user: 'alice@example.test', password: 'secret' }, from: 'alice@example.test', to: ['someone@remote.test'], message: bare.toString('base64') });
  assert.deepEqual(plain.refused, {});
  assert.ok(plain.ehlo_tls?.includes('auth'));
  const c = lastCommit(n + 1);
  assert.match(addedPrefix(c.content, bare), /with ESMTPSA id [^]*\r\nDate: [^\r]+\r\nMessage-ID: <[^>]+@mx\.example\.test>\r\n$/);
  assert.equal(c.envelope.meta['auth_user'], 'alice@example.test');
  const login = await smtplib({ port: env.port('submission'), auth: { mechanism: 'LOGIN', user: 'bob@example.test', password: 'hunter2' }, from: 'bob@example.test', to: ['alice@example.test'], message: message('login').toString('base64') });
  assert.deepEqual(login.refused, {});
  assert.match(lastCommit(n + 2).content.toString(), /with ESMTPA id/);
  const wrong = await smtplib({ port: env.port('submission'), auth: { mechanism: 'PLAIN', user: 'bob@example.test', password: 'nope' }, from: 'bob@example.test', to: ['alice@example.test'], message: message('x').toString('base64') });
  assert.match(wrong.error ?? '', /SMTPAuthenticationError: \(535/);
  const unauth = await smtplib({ port: env.port('submission'), from: 'bob@example.test', to: ['alice@example.test'], message: message('x').toString('base64') });
  assert.match(unauth.error ?? '', /530/);
  assert.equal(env.services.commits.length, n + 2);
});

test('nodemailer: plain and STARTTLS + AUTH PLAIN, raw message byte for byte', async () => {
  const n = env.services.commits.length;
  const msg = message('nodemailer mx');
  const mx = nodemailer.createTransport({ host: '127.0.0.1', port: env.port('mx'), secure: false, ignoreTLS: true, name: 'nodemailer.example' });
  const info = await mx.sendMail({ envelope: { from: 'carol@remote.test', to: ['bob@example.test'] }, raw: msg });
  assert.match(String(info.response), /^250 2\.0\.0 Ok: queued as Q\d+$/);
  assert.match(addedPrefix(lastCommit(n + 1).content, msg), /^Received: from nodemailer\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Cartero\) with ESMTP id/);

  const sub = nodemailer.createTransport({ host: '127.0.0.1', port: env.port('submission'), secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, auth: { user: 'alice@example.test', pass: 'secret' } });
  await sub.sendMail({ envelope: { from: 'alice@example.test', to: ['someone@remote.test'] }, raw: msg });
  assert.match(addedPrefix(lastCommit(n + 2).content, msg), /with ESMTPSA id/);
  mx.close();
  sub.close();
});

test('nodemailer: implicit TLS (smtps) with AUTH LOGIN', async () => {
  const n = env.services.commits.length;
  const msg = message('nodemailer smtps');
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: env.port('smtps'), secure: true, tls: { rejectUnauthorized: false }, authMethod: 'LOGIN', auth: { user: 'bob@example.test', pass: 'hunter2' } });
  await t.sendMail({ envelope: { from: 'bob@example.test', to: ['carol@remote.test'] }, raw: msg });
  const c = lastCommit(n + 1);
  assert.match(addedPrefix(c.content, msg), /with ESMTPSA id/);
  assert.equal(c.envelope.meta['tls'], true);
  t.close();
});

function swaks(args: string[], data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--server', '127.0.0.1', '--ehlo', 'swaks.example', '--data', '-', ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`swaks exited ${code}:\n${out}`))));
    child.stdin.end(data);
  });
}

test('swaks: pipelined, and STARTTLS + AUTH on submission (skipped when swaks is not installed)', { skip: !hasSwaks() && 'swaks is not installed' }, async () => {
  const n = env.services.commits.length;
  const msg = message('swaks');
  // swaks always writes CRLF before its ".": give it the message without its last CRLF
  const data = msg.subarray(0, msg.length - 2);
  await swaks(['--port', String(env.port('mx')), '--from', 'carol@remote.test', '--to', 'bob@example.test', '--pipeline'], data);
  assert.match(addedPrefix(lastCommit(n + 1).content, msg), /^Received: from swaks\.example /);
  await swaks(['--port', String(env.port('submission')), '--from', 'alice@example.test', '--to', 'carol@remote.test', '--tls', '--auth', 'LOGIN', '--auth-user', 'alice@example.test', '--auth-password', 'secret'], data);
  assert.match(addedPrefix(lastCommit(n + 2).content, msg), /with ESMTPSA id/);
});

function hasSwaks(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/swaks`));
}
