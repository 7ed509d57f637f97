/*
 * A private Postfix instance for side-by-side benchmarks: its own config, queue and mailbox directories
 * under a temp dir, listening on one loopback port, delivering every recipient of example.test into one
 * mbox through virtual(8) (fsynced like ours), smtpd_forbid_bare_newline=reject, TLS off. The Debian
 * package is installed on demand (root, apt). Never touches the machine's own /etc/postfix setup.
 * Relay mode (bench/relay.ts): everything else goes to a relayhost (a sink) or by a transport map
 * (e.g. LMTP to a Cartero backend), with Postfix's default concurrency and connection caching.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PostfixInstance {
  port: number;
  /** messages delivered so far (status=sent lines in its log) */
  delivered(): number;
  stop(): void;
}

export function ensurePostfix(): boolean {
  if (existsSync('/usr/sbin/postfix') && existsSync('/usr/sbin/smtp-source')) return true;
  if (process.getuid?.() !== 0) return false;
  // "No configuration": the package must not set up or start the system's own instance
  spawnSync('sh', ['-c', 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections'], { stdio: 'ignore' });
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', 'postfix'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0 && existsSync('/usr/sbin/smtp-source');
}

/** postfix(1) reports its fatal errors only to a terminal or syslog: run it under script(1) to see them. */
function postfix(dir: string, command: string): void {
  const r = spawnSync('script', ['-qec', `postfix -c ${join(dir, 'etc')} ${command}`, '/dev/null'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`postfix ${command} failed: ${r.stdout.trim()}`);
}

export interface RelayOptions {
  /** Postfix's relayhost, e.g. "[127.0.0.1]:2950" */
  relayhost: string;
  /** domain -> transport, e.g. { "lmtp.test": "lmtp:inet:127.0.0.1:2424" } */
  transports?: Record<string, string>;
}

export function startPostfix(dir: string, port: number, relay?: RelayOptions): PostfixInstance {
  for (const d of ['etc', 'spool', 'data', 'mail']) mkdirSync(join(dir, d), { recursive: true });
  // Postfix's daemons run as the postfix user: every directory above its queue must be searchable
  for (let d = dir; d !== dirname(d); d = dirname(d)) chmodSync(d, statSync(d).mode | 0o755);
  chownSync(join(dir, 'data'), Number(execFileSync('id', ['-u', 'postfix']).toString()), 0);
  execFileSync('chmod', ['1777', join(dir, 'mail')]);
  const master = readFileSync('/etc/postfix/master.cf', 'utf8').replace(/^smtp\s+inet\s.*$/m, `127.0.0.1:${port} inet n - n - - smtpd`);
  writeFileSync(join(dir, 'etc', 'master.cf'), master);
  writeFileSync(
    join(dir, 'etc', 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${join(dir, 'spool')}`,
      `data_directory = ${join(dir, 'data')}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = postfix.bench.test',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      'smtpd_tls_security_level = none',
      'smtpd_forbid_bare_newline = reject',
      'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
      'virtual_mailbox_domains = example.test',
      `virtual_mailbox_base = ${join(dir, 'mail')}`,
      'virtual_mailbox_maps = static:bench',
      'virtual_uid_maps = static:65534',
      'virtual_gid_maps = static:65534',
      'virtual_mailbox_limit = 0',
      'default_process_limit = 200',
      `maillog_file = ${join(dir, 'maillog')}`,
      `maillog_file_prefixes = ${dir}`,
      ...(relay ? relayLines(relay) : []),
      '',
    ].join('\n'),
  );
  if (existsSync('/etc/postfix/dynamicmaps.cf')) copyFileSync('/etc/postfix/dynamicmaps.cf', join(dir, 'etc', 'dynamicmaps.cf'));
  postfix(dir, 'start');
  const log = join(dir, 'maillog');
  return {
    port,
    delivered: () => (existsSync(log) ? (readFileSync(log, 'utf8').match(/status=sent/g) ?? []).length : 0),
    stop: () => postfix(dir, 'stop'),
  };
}

function relayLines(relay: RelayOptions): string[] {
  const transports = Object.entries(relay.transports ?? {}).map(([domain, t]) => `${domain}=${t}`);
  return [
    `relayhost = ${relay.relayhost}`,
    'smtp_tls_security_level = none',
    'lmtp_tls_security_level = none',
    ...(transports.length > 0 ? [`transport_maps = inline:{ ${transports.join(', ')} }`] : []),
  ];
}
