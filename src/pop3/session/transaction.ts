/*
 * The TRANSACTION state (RFC 1939 §5) and UPDATE (§6): STAT, LIST, UIDL, TOP, RETR, DELE, RSET, NOOP on
 * the snapshot taken at login, and QUIT, which applies the deletion marks and releases the maildrop
 * before answering. Message bodies are read from the store once and streamed dot-stuffed with
 * back-pressure. A message removed by another session (IMAP) meanwhile is -ERR; store failures are
 * -ERR [SYS/TEMP] (or [SYS/PERM] for damaged content); nothing is ever deleted without QUIT.
 */
import { isStoreError } from '../../store/index.js';
import type { Maildrop } from '../maildrop.js';
import { dotStuffed, topOf } from '../proto/dot-stuff.js';
import { err, multiline, ok } from '../proto/reply.js';
import type { EndStatus, SessionContext } from './types.js';

const NO_SUCH_MESSAGE = err('No such message');
const DELETED = err('Message is deleted');

function dropOf(ctx: SessionContext): Maildrop | null {
  return ctx.state.phase === 'transaction' ? ctx.state.drop : null;
}

/** The message numbered `n`, or null after answering -ERR. */
function lookup(ctx: SessionContext, drop: Maildrop, n: number) {
  const found = drop.get(n);
  if (found.kind === 'ok') return found.meta;
  ctx.send(found.kind === 'deleted' ? DELETED : NO_SUCH_MESSAGE);
  return null;
}

export function stat(ctx: SessionContext): void {
  const drop = dropOf(ctx);
  if (!drop) return;
  const { count, size } = drop.stat();
  ctx.send(ok(`${count} ${size}`));
}

export function list(ctx: SessionContext, n: number | null): void {
  const drop = dropOf(ctx);
  if (!drop) return;
  if (n !== null) {
    const meta = lookup(ctx, drop, n);
    if (meta) ctx.send(ok(`${n} ${meta.size}`));
    return;
  }
  const { count, size } = drop.stat();
  ctx.send(multiline(`${count} messages (${size} octets)`, drop.listing().map(([i, m]) => `${i} ${m.size}`)));
}

export function uidl(ctx: SessionContext, n: number | null): void {
  const drop = dropOf(ctx);
  if (!drop) return;
  if (n !== null) {
    const meta = lookup(ctx, drop, n);
    if (meta) ctx.send(ok(`${n} ${drop.uidl(meta)}`));
    return;
  }
  ctx.send(multiline('Unique-ID listing follows', drop.listing().map(([i, m]) => `${i} ${drop.uidl(m)}`)));
}

export function dele(ctx: SessionContext, n: number): void {
  const drop = dropOf(ctx);
  if (!drop) return;
  if (!lookup(ctx, drop, n)) return;
  drop.mark(n);
  ctx.send(ok(`Message ${n} deleted`));
}

export function rset(ctx: SessionContext): void {
  const drop = dropOf(ctx);
  if (!drop) return;
  drop.reset();
  const { count, size } = drop.stat();
  ctx.send(ok(`${count} messages (${size} octets)`));
}

export function noop(ctx: SessionContext): void {
  ctx.send(ok());
}

/**
 * Reads the content, or answers -ERR and returns null. Read ahead, it is there at once and the answer
 * joins those of earlier pipelined commands; otherwise they are sent before waiting for the store.
 */
async function content(ctx: SessionContext, drop: Maildrop, n: number): Promise<Buffer | null> {
  const meta = lookup(ctx, drop, n);
  if (!meta) return null;
  try {
    const found = drop.content(meta);
    if (Buffer.isBuffer(found)) return found;
    ctx.flush();
    return await found;
  } catch (e) {
    if (isStoreError(e, 'not_found')) {
      ctx.send(err('Message was removed by another session'));
    } else if (isStoreError(e, 'corrupt')) {
      ctx.log.error({ err: e, uid: meta.uid }, 'message content damaged');
      ctx.send(err('Message content is damaged', 'SYS/PERM'));
    } else {
      ctx.log.error({ err: e, uid: meta.uid }, 'cannot read message');
      ctx.send(err('Cannot read the message now, try again later', 'SYS/TEMP'));
    }
    return null;
  }
}

export async function retr(ctx: SessionContext, n: number): Promise<void> {
  const drop = dropOf(ctx);
  if (!drop) return;
  const body = await content(ctx, drop, n);
  if (!body) return;
  const meta = drop.messages[n - 1]!;
  if (await ctx.sendBody(ok(`${body.length} octets`), dotStuffed(body))) drop.noteRetrieved(meta);
}

export async function top(ctx: SessionContext, n: number, lines: number): Promise<void> {
  const drop = dropOf(ctx);
  if (!drop) return;
  const body = await content(ctx, drop, n);
  if (!body) return;
  drop.tops++;
  await ctx.sendBody(ok(), dotStuffed(topOf(body, lines)));
}

/** QUIT in TRANSACTION: UPDATE, release, answer, close. */
export async function quit(ctx: SessionContext): Promise<void> {
  const drop = dropOf(ctx);
  if (!drop) return;
  ctx.state = { phase: 'update' };
  let reply: string;
  let status: EndStatus;
  try {
    const result = await drop.update();
    const left = drop.messages.length - result.deleted - result.missing;
    reply = ok(`Logging out, ${result.deleted} message${result.deleted === 1 ? '' : 's'} deleted, ${left} left`);
    ctx.summary = sessionSummary(drop, result.deleted);
    status = 'quit';
  } catch (e) {
    ctx.log.error({ err: e }, 'UPDATE failed');
    reply = err('Some deleted messages were not removed, try again later', 'SYS/TEMP');
    ctx.summary = sessionSummary(drop, 0);
    status = 'update_failed';
  } finally {
    await drop.close();
  }
  ctx.close(reply, status);
}

/** The maildrop's part of the logout line, in the spirit of Dovecot's pop3 logout line. */
export function sessionSummary(drop: Maildrop, deleted: number): Record<string, unknown> {
  return {
    user: drop.account.address,
    retrieved: drop.retrieved,
    retrieved_bytes: drop.retrievedBytes,
    top: drop.tops,
    marked: drop.markedCount,
    deleted,
    messages: drop.messages.length,
  };
}
