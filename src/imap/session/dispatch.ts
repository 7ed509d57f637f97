/*
 * The command table: which handler runs each command and in which states it is allowed (RFC 9051 §6).
 * FETCH, STORE and SEARCH must not be followed by EXPUNGE responses (§7.5.1); their UID forms may, and do.
 * `view: true`: the command works on the selected mailbox's messages, read (once) before it runs.
 */
import * as any from './commands/any.js';
import { append } from './commands/append.js';
import { authenticate, login, starttls } from './commands/auth.js';
import { fetch, uidFetch } from './commands/fetch.js';
import { idle } from './commands/idle.js';
import * as mbox from './commands/mailboxes.js';
import { search, uidSearch } from './commands/search.js';
import * as sel from './commands/select.js';
import { copy, move, store, uidCopy, uidMove, uidStore } from './commands/store.js';
import type { CommandSpec, ImapState } from './types.js';

const ANY: readonly ImapState[] = ['notauth', 'auth', 'selected'];
const NOTAUTH: readonly ImapState[] = ['notauth'];
const AUTH: readonly ImapState[] = ['auth', 'selected'];
const SELECTED: readonly ImapState[] = ['selected'];

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  CAPABILITY: { states: ANY, run: any.capability },
  NOOP: { states: ANY, run: any.noop },
  LOGOUT: { states: ANY, run: any.logout },
  ID: { states: ANY, run: any.id },
  STARTTLS: { states: NOTAUTH, run: starttls },
  LOGIN: { states: NOTAUTH, run: login },
  AUTHENTICATE: { states: NOTAUTH, run: authenticate },
  ENABLE: { states: AUTH, run: any.enable },
  NAMESPACE: { states: AUTH, run: any.namespace },
  SELECT: { states: AUTH, run: sel.select },
  EXAMINE: { states: AUTH, run: sel.examine },
  CREATE: { states: AUTH, run: mbox.create },
  DELETE: { states: AUTH, run: mbox.del },
  RENAME: { states: AUTH, run: mbox.rename },
  SUBSCRIBE: { states: AUTH, run: mbox.subscribe },
  UNSUBSCRIBE: { states: AUTH, run: mbox.unsubscribe },
  LIST: { states: AUTH, run: mbox.list },
  LSUB: { states: AUTH, run: mbox.lsub },
  STATUS: { states: AUTH, run: mbox.status },
  APPEND: { states: AUTH, run: append },
  IDLE: { states: AUTH, run: idle },
  GETQUOTAROOT: { states: AUTH, run: mbox.getquotaroot },
  GETQUOTA: { states: AUTH, run: mbox.getquota },
  SETQUOTA: { states: AUTH, run: mbox.setquota },
  CLOSE: { states: SELECTED, run: sel.close, view: true },
  UNSELECT: { states: SELECTED, run: sel.unselect },
  EXPUNGE: { states: SELECTED, run: sel.expunge, view: true },
  'UID EXPUNGE': { states: SELECTED, run: sel.uidExpunge, view: true },
  SEARCH: { states: SELECTED, run: search, expungeAfter: false, view: true },
  'UID SEARCH': { states: SELECTED, run: uidSearch, view: true },
  FETCH: { states: SELECTED, run: fetch, expungeAfter: false, view: true },
  'UID FETCH': { states: SELECTED, run: uidFetch, view: true },
  STORE: { states: SELECTED, run: store, expungeAfter: false, view: true },
  'UID STORE': { states: SELECTED, run: uidStore, view: true },
  COPY: { states: SELECTED, run: copy, view: true },
  'UID COPY': { states: SELECTED, run: uidCopy, view: true },
  MOVE: { states: SELECTED, run: move, view: true },
  'UID MOVE': { states: SELECTED, run: uidMove, view: true },
};
