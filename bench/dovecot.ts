/*
 * A private Dovecot for side-by-side IMAP/POP3 benchmarks: its own config, run and state directories
 * under a temp dir, IMAP and POP3 on loopback ports, users from a passwd-file (with the hashes the
 * caller gives: SHA512-CRYPT in the bench), Maildir homes owned by `nobody`, no TLS, limits raised so
 * 1,000 sessions of one user fit. Mailboxes are filled by writing Maildir files directly (the fastest fair way: Dovecot indexes
 * them on first access, which the bench does before it measures). The Debian packages are installed
 * on demand (root, apt). Never touches the machine's own /etc/dovecot setup or its service.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';

const NOBODY = 65534;

export interface DovecotUser {
  name: string;
  /** the passdb entry as it is, e.g. "{SHA512-CRYPT}$6$…" (the bench gives Cartero the same one) */
  hash: string;
}

export interface DovecotInstance {
  imapPort: number;
  pop3Port: number;
  /** the master's pid; its children serve the sessions */
  pid: number;
  /** the Maildir of a user (files written there before the first login are picked up) */
  maildir(user: string, folder?: string): string;
  /** Makes the written files the user's (call after filling, before the first login) */
  fixOwnership(): void;
  stop(): Promise<void>;
}

export function ensureDovecot(): boolean {
  const present = () => existsSync('/usr/sbin/dovecot') && existsSync('/usr/lib/dovecot/imap') && existsSync('/usr/lib/dovecot/pop3');
  if (present()) return true;
  if (process.getuid?.() !== 0) return false;
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  // policy-rc.d or not, the package's own service is left alone: we never use /etc/dovecot
  spawnSync('apt-get', ['install', '-y', '-qq', 'dovecot-imapd', 'dovecot-pop3d'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return present();
}

export async function startDovecot(dir: string, options: { imapPort: number; pop3Port: number; users: DovecotUser[] }): Promise<DovecotInstance> {
  for (const d of ['run', 'state', 'home']) mkdirSync(join(dir, d), { recursive: true });
  // the sessions run as nobody: every directory above the homes must be searchable
  for (let d = dir; d !== dirname(d); d = dirname(d)) chmodSync(d, statSync(d).mode | 0o755);
  const passwd = options.users.map((u) => `${u.name}:${u.hash}:${NOBODY}:${NOBODY}::${join(dir, 'home', u.name)}::`).join('\n');
  writeFileSync(join(dir, 'passwd'), `${passwd}\n`, { mode: 0o644 });
  for (const u of options.users) for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, 'home', u.name, 'Maildir', sub), { recursive: true });
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    [
      `base_dir = ${join(dir, 'run')}`,
      `state_dir = ${join(dir, 'state')}`,
      'instance_name = cartero-bench',
      `log_path = ${join(dir, 'dovecot.log')}`,
      'protocols = imap pop3',
      'listen = 127.0.0.1',
      'ssl = no',
      'disable_plaintext_auth = no',
      'auth_mechanisms = plain login',
      'mail_location = maildir:~/Maildir',
      'first_valid_uid = 1',
      'default_login_user = dovenull',
      'default_internal_user = dovecot',
      'mail_max_userip_connections = 5000',
      'default_process_limit = 3000',
      'default_client_limit = 10000',
      'default_vsz_limit = 1G',
      'pop3_uidl_format = %08Xu%08Xv',
      'passdb {',
      '  driver = passwd-file',
      `  args = scheme=SHA512-CRYPT ${join(dir, 'passwd')}`,
      '}',
      'userdb {',
      '  driver = passwd-file',
      `  args = ${join(dir, 'passwd')}`,
      '}',
      'service imap-login {',
      `  inet_listener imap {\n    address = 127.0.0.1\n    port = ${options.imapPort}\n  }`,
      '  inet_listener imaps {\n    port = 0\n  }',
      '}',
      'service pop3-login {',
      `  inet_listener pop3 {\n    address = 127.0.0.1\n    port = ${options.pop3Port}\n  }`,
      '  inet_listener pop3s {\n    port = 0\n  }',
      '}',
      'service imap {\n  process_limit = 3000\n}',
      'service anvil {\n  client_limit = 10000\n}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('/usr/sbin/dovecot', ['-F', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // up when both listeners accept (bounded wait)
  const deadline = Date.now() + 20_000;
  while (!(await listening(options.imapPort)) || !(await listening(options.pop3Port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`dovecot did not start: ${stderr.trim() || readLog(dir)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    imapPort: options.imapPort,
    pop3Port: options.pop3Port,
    pid: child.pid!,
    maildir: (user, folder) => join(dir, 'home', user, 'Maildir', ...(folder ? [`.${folder}`] : [])),
    fixOwnership: () => execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, join(dir, 'home')]),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

function readLog(dir: string): string {
  const log = join(dir, 'dovecot.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-5).join(' | ') : '';
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** IMAP flags as Maildir info letters (sorted, as Maildir requires). */
export function maildirInfo(flags: readonly string[]): string {
  const letters: string[] = [];
  for (const f of flags) {
    const l = { '\\draft': 'D', '\\flagged': 'F', '\\answered': 'R', '\\seen': 'S', '\\deleted': 'T' }[f.toLowerCase()];
    if (l) letters.push(l);
  }
  return `:2,${letters.sort().join('')}`;
}

/**
 * Writes one message into a Maildir's cur/ with its flags and internal date (the file's mtime). The
 * name carries the size (S=) as Dovecot's own deliveries do, so it need not stat or read for sizes.
 */
export async function writeMaildirMessage(maildir: string, seq: number, content: Buffer, flags: readonly string[], internalDate: number): Promise<void> {
  const secs = Math.floor(internalDate / 1000);
  const name = `${secs}.M${seq}P1.bench,S=${content.length}${maildirInfo(flags)}`;
  const path = join(maildir, 'cur', name);
  await writeFile(path, content);
  await utimes(path, secs, secs);
}

/** A Maildir++ subfolder (".Name" with cur/new/tmp and the maildirfolder marker). */
export function createMaildirFolder(maildir: string): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, sub), { recursive: true });
  writeFileSync(join(maildir, 'maildirfolder'), '');
}
