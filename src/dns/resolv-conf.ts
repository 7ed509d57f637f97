/*
 * The default name servers: the `nameserver` lines of /etc/resolv.conf (what the C library would use),
 * parsed by a pure function so odd files are tested; 127.0.0.1:53 when the file names none.
 * Also the parser for configured server strings ("127.0.0.1", "127.0.0.1:5353", "[::1]:5353").
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface ServerAddress {
  address: string;
  port: number;
}

export class DnsServerSyntaxError extends Error {
  override readonly name = 'DnsServerSyntaxError';
}

/** Parses "addr", "addr:port", "[v6addr]:port" or a bare IPv6 address; throws DnsServerSyntaxError. */
export function parseServer(text: string): ServerAddress {
  const s = text.trim();
  let address = s;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    address = bracket[1] ?? '';
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (isIP(s) !== 6) {
    const colon = s.lastIndexOf(':');
    if (colon >= 0) {
      address = s.slice(0, colon);
      port = /^\d+$/.test(s.slice(colon + 1)) ? Number(s.slice(colon + 1)) : NaN;
    }
  }
  if (isIP(address) === 0) throw new DnsServerSyntaxError(`DNS server "${text}": not an IP address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DnsServerSyntaxError(`DNS server "${text}": bad port`);
  return { address, port };
}

export function parseResolvConf(text: string): ServerAddress[] {
  const out: ServerAddress[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)$/.exec(line);
    if (!m?.[1]) continue;
    const addr = m[1].replace(/%.*$/, '');
    if (isIP(addr) !== 0) out.push({ address: addr, port: 53 });
  }
  return out;
}

export function systemServers(path = '/etc/resolv.conf'): ServerAddress[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // no file: the C library's default is the local server too
  }
  const servers = parseResolvConf(text);
  return servers.length > 0 ? servers : [{ address: '127.0.0.1', port: 53 }];
}
