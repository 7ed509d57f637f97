/*
 * `cartero sendmail`: the Sendmail-compatible submission command that cron jobs and scripts call. Reads
 * one message from standard input, prepares it (sendmail-input.ts) and queues it durably through the
 * same commit path as SMTP (alias expansion, log line); a running node delivers it within its poll
 * interval. Prints nothing and exits 0 only once the message is committed; otherwise one line
 * "sendmail: ..." on stderr and a sysexits code (64 usage, 65 data, 74 input, 75 tempfail, 78 config),
 * and nothing is queued. -bp and -q run `cartero queue list` / `queue flush`. -bs speaks SMTP on standard
 * input and output (the local program is trusted like mynetworks, AUTH is not needed); each message gets
 * its 250 only once committed, and standard output carries nothing but the SMTP replies.
 */
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { createAuthenticator } from '../auth/authenticate.js';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../log/logger.js';
import { LocalDomains } from '../policy/domains.js';
import { createRecipientPolicy } from '../policy/recipients.js';
import { createCommit } from '../queue/commit.js';
import type { SmtpServices } from '../smtp/services.js';
import { runStdioSession } from '../smtp/stdio.js';
import { openStore, type Store } from '../store/index.js';
import { systemClock } from '../store/api.js';
import { CliError, configPath, UsageError } from './args.js';
import type { Io } from './context.js';
import { runQueue } from './queue.js';
import {
  canonicalAddress,
  EX_CONFIG,
  EX_DATAERR,
  EX_IOERR,
  EX_TEMPFAIL,
  EX_USAGE,
  parseSendmailArgs,
  prepareMessage,
  SendmailError,
  type SendmailOptions,
} from './sendmail-input.js';

const HELP = `usage: cartero sendmail [options] [--] [recipient...]

Queues one message read from standard input, like sendmail(1). Prints nothing on success (exit 0).

options:
  -t                 take recipients from To:, Cc: and Bcc: (Resent-* when present) and remove Bcc:;
                     command-line recipients are added (as Postfix does)
  -i, -oi            a line holding a single "." does not end the message
  -f SENDER, -r      envelope sender (default: the invoking user @ hostname; "<>" for the null sender)
  -F NAME            full name for a From: header added when the message has none
  -N DSN             NOTIFY for every recipient: never, or a list of success,failure,delay
  -R full|hdrs       what a bounce returns (RET)
  -V ENVID           envelope id for DSNs
  -B 7BIT|8BITMIME   body type
  -v                 log the queueing to standard error
  -bm                queue the message (the default)
  -bp                list the queue (cartero queue list)
  -bs                speak SMTP on standard input and output (each message queued before its 250)
  -q                 flush the queue (cartero queue flush)
  -C FILE, -c FILE, --config FILE
                     configuration file (default $CARTERO_CONFIG or ./cartero.yaml)
  --help             show this help

accepted and ignored, as Postfix's sendmail ignores them: -G -U -m -n -x, -o7 -o8 -oA... -od... -oe...
-om and any other -oX, -L LABEL, -O OPT=VALUE, -X FILE, -e MODE, -h HOPS, -p PROTO, -q<interval>.
exit codes: 0 queued, 64 usage (incl. no recipient), 65 bad message or address, 74 unreadable input,
75 the queue is unavailable (try again), 78 configuration error.
`;

/** The invoking user's login name: $USER, $LOGNAME, then the password database. */
function invokingUser(env: NodeJS.ProcessEnv): string {
  const fromEnv = env['USER'] ?? env['LOGNAME'];
  if (fromEnv && /^[A-Za-z0-9._-]{1,64}$/.test(fromEnv)) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return 'nobody';
  }
}

function envelopeSender(o: SendmailOptions, user: string, hostname: string): string {
  if (o.sender === null) return canonicalAddress(user, hostname, EX_USAGE);
  const s = o.sender.trim();
  if (s === '' || s === '<>') return '';
  return canonicalAddress(s, hostname, EX_USAGE);
}

function commitLogger(config: Config, verbose: boolean, io: Io): Logger {
  return createLogger({ level: verbose ? 'info' : 'silent', format: config.log.format }, { destination: { write: (line: string) => io.err(line) } });
}

async function queueMessage(o: SendmailOptions, io: Io, readInput: (limit: number) => Promise<Buffer>): Promise<void> {
  const config = loadConfig(configPath(o.config, io.env));
  const hostname = config.hostname;
  const user = invokingUser(io.env);
  const sender = envelopeSender(o, user, hostname);
  const cmdline = o.recipients.flatMap((r) => r.split(',')).map((r) => r.trim()).filter((r) => r !== '');
  const recipients = cmdline.map((r) => canonicalAddress(r, hostname, EX_USAGE));
  if (recipients.length === 0 && !o.extractRecipients) throw new SendmailError(EX_USAGE, 'no recipient addresses given (name them or use -t)');

  const limit = config.smtp.message_size_limit;
  let raw: Buffer;
  try {
    raw = await readInput(limit);
  } catch (err) {
    throw new SendmailError(EX_IOERR, `cannot read the message from standard input: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (raw.length > limit) throw new SendmailError(EX_DATAERR, `message exceeds the limit of ${limit} bytes (smtp.message_size_limit); not queued`);
  const now = Date.now();
  const prepared = prepareMessage(raw, {
    ignoreDots: o.ignoreDots,
    extractRecipients: o.extractRecipients,
    sender,
    fullName: o.fullName,
    hostname,
    user,
    uid: typeof process.getuid === 'function' ? process.getuid() : null,
    now,
    uniqueId: `${now.toString(36)}.${randomBytes(6).toString('hex')}`,
    sizeLimit: limit,
  });
  const all = [...new Set([...recipients, ...prepared.headerRecipients])];
  if (all.length === 0) throw new SendmailError(EX_DATAERR, 'no recipient addresses found in the message header; not queued');
  const smtputf8 = /[^\x00-\x7f]/.test(sender) || all.some((a) => /[^\x00-\x7f]/.test(a));
  const meta: Record<string, unknown> = {
    client: 'local',
    protocol: 'sendmail',
    user,
    body: o.body ?? (prepared.eightBit ? '8BITMIME' : '7BIT'),
    smtputf8,
    ...(o.ret ? { ret: o.ret } : {}),
    ...(o.envid ? { envid: o.envid } : {}),
  };

  let store: Store;
  try {
    store = await openStore(config.store, { migrate: config.store.migrate_on_start });
  } catch (err) {
    throw new SendmailError(EX_TEMPFAIL, `queue unavailable, message not queued: ${err instanceof Error ? err.message : String(err)}`);
  }
  const logger = commitLogger(config, o.verbose, io);
  try {
    const clock = systemClock;
    const d = config.delivery;
    const domains = new LocalDomains({ store, domains: config.domains, relayDomains: config.relay_domains, clock });
    const commit = createCommit({
      store,
      domains,
      delimiters: d.recipient_delimiter,
      recursionLimit: d.virtual_alias_recursion_limit,
      expansionLimit: d.virtual_alias_expansion_limit,
      clock,
      logger,
    });
    const envelope = { sender, recipients: all.map((address) => ({ address, ...(o.notify ? { notify: o.notify } : {}) })), meta };
    await commit(envelope, prepared.content);
  } catch (err) {
    throw new SendmailError(EX_TEMPFAIL, `queue unavailable, message not queued: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    logger.flush?.();
    await store.close();
  }
}

/** The byte streams of `-bs` (default: the process's standard input and output). */
export interface SendmailStdio {
  input: Readable;
  output: Writable;
}

/**
 * `-bs`: one SMTP session on standard input/output with the node's recipient policy and commit path.
 * A store that cannot be opened is a 421 on the SMTP channel and exit 75; after that the exit code is 0
 * (as Postfix's sendmail -bs): each transaction's fate is in its own reply.
 */
async function smtpSession(o: SendmailOptions, io: Io, stdio: SendmailStdio): Promise<number> {
  const config = loadConfig(configPath(o.config, io.env));
  const user = invokingUser(io.env);
  let store: Store;
  try {
    store = await openStore(config.store, { migrate: config.store.migrate_on_start });
  } catch (err) {
    stdio.output.write(`421 4.3.0 ${config.hostname} Error: queue unavailable, try again later\r\n`);
    throw new SendmailError(EX_TEMPFAIL, `queue unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const logger = commitLogger(config, o.verbose, io);
  try {
    const clock = systemClock;
    const d = config.delivery;
    const domains = new LocalDomains({ store, domains: config.domains, relayDomains: config.relay_domains, clock });
    const commit = createCommit({
      store,
      domains,
      delimiters: d.recipient_delimiter,
      recursionLimit: d.virtual_alias_recursion_limit,
      expansionLimit: d.virtual_alias_expansion_limit,
      clock,
      logger,
    });
    const services: SmtpServices = {
      checkRecipient: createRecipientPolicy({ store, domains, delimiters: d.recipient_delimiter, clock }),
      // a local user may send as anyone, as with sendmail -f
      checkSender: async () => ({ action: 'accept' }),
      authenticate: createAuthenticator(store),
      commit: (envelope, content) => commit({ ...envelope, meta: { ...envelope.meta, client: 'local', protocol: 'sendmail-bs', user } }, content),
    };
    await runStdioSession({ input: stdio.input, output: stdio.output, config, services, logger, listener: 'sendmail -bs' });
    return 0;
  } finally {
    logger.flush?.();
    await store.close();
  }
}

/**
 * Runs `cartero sendmail ARGS`. `readInput` reads standard input up to `limit + 1` bytes (default: the
 * Io's readStdinBytes); injectable for tests, as are the streams of -bs. Never throws: every failure is a
 * message and an exit code.
 */
export async function runSendmail(argv: string[], io: Io, readInput?: (limit: number) => Promise<Buffer>, stdio?: SendmailStdio): Promise<number> {
  try {
    const o = parseSendmailArgs(argv);
    if (o.help) {
      io.out(HELP);
      return 0;
    }
    const config = o.config !== undefined ? ['-c', o.config] : [];
    if (o.mode === 'list') return await runQueue(['list', ...config], io);
    if (o.mode === 'flush') return await runQueue(['flush', ...config], io, { logLines: false });
    if (o.mode === 'smtp') return await smtpSession(o, io, stdio ?? { input: process.stdin, output: process.stdout });
    await queueMessage(o, io, readInput ?? ((limit) => io.readStdinBytes(limit)));
    return 0;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: Io): number {
  if (err instanceof SendmailError) {
    io.err(`sendmail: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ConfigError) {
    for (const line of err.lines()) io.err(`sendmail: ${line}\n`);
    return EX_CONFIG;
  }
  if (err instanceof UsageError) {
    io.err(`sendmail: ${err.message}\n`);
    return EX_USAGE;
  }
  io.err(`sendmail: ${err instanceof CliError ? '' : 'unexpected error: '}${err instanceof Error ? err.message : String(err)}\n`);
  return EX_TEMPFAIL;
}
