/*
 * The IMAP ENVELOPE (RFC 9051 §7.5.2): which header fields feed it, taken once at parse time from the
 * first occurrence of each, and its rendering. Values are the raw (unfolded) header text; Sender and
 * Reply-To fall back to From when absent or empty, as the RFC requires.
 */
import { parseAddressList } from './address.js';
import { fieldValue, type HeaderField } from './header.js';
import { imapString } from './imap-string.js';
import type { Address, Envelope } from './types.js';

export const ENVELOPE_FIELDS = ['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id'] as const;

export function envelopeOf(buf: Buffer, first: ReadonlyMap<string, HeaderField>): Envelope {
  const text = (name: string): string | null => {
    const f = first.get(name);
    return f ? fieldValue(buf, f) : null;
  };
  const addresses = (name: string): Address[] | null => {
    const v = text(name);
    if (v === null) return null;
    const list = parseAddressList(v);
    return list.length > 0 ? list : null;
  };
  const nonEmpty = (v: string | null) => (v === '' ? null : v);
  return {
    date: nonEmpty(text('date')),
    subject: text('subject'),
    from: addresses('from'),
    sender: addresses('sender'),
    replyTo: addresses('reply-to'),
    to: addresses('to'),
    cc: addresses('cc'),
    bcc: addresses('bcc'),
    inReplyTo: nonEmpty(text('in-reply-to')),
    messageId: nonEmpty(text('message-id')),
  };
}

function addressList(list: Address[] | null): string {
  if (!list || list.length === 0) return 'NIL';
  return `(${list.map((a) => `(${a.map(imapString).join(' ')})`).join('')})`;
}

export function renderEnvelope(e: Envelope): string {
  return `(${[
    imapString(e.date),
    imapString(e.subject),
    addressList(e.from),
    addressList(e.sender ?? e.from),
    addressList(e.replyTo ?? e.from),
    addressList(e.to),
    addressList(e.cc),
    addressList(e.bcc),
    imapString(e.inReplyTo),
    imapString(e.messageId),
  ].join(' ')})`;
}
