/*
 * IPv4/IPv6 addresses and CIDR blocks as bytes, for `mynetworks` validation and later relay checks.
 * Pure functions, no I/O. Parsing never throws: bad input comes back as null or an error string that
 * completes the sentence "expected …" of a configuration problem.
 */
import { isIP } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** network address bytes (4 or 16) */
  bytes: Uint8Array;
  prefix: number;
}

function parseIpv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map((part) => Number(part)));
}

function parseIpv6(text: string): Uint8Array {
  let head = text;
  // An embedded dotted quad (::ffff:192.0.2.1) becomes the last two 16-bit groups.
  const lastColon = head.lastIndexOf(':');
  const tail = head.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = parseIpv4(tail);
    head = `${head.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left = '', right] = head.split('::');
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  const groups = [...l, ...new Array<string>(8 - l.length - r.length).fill('0'), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** The address as 4 or 16 bytes, or null when it is not an IP address (zone ids are refused). */
export function parseIp(text: string): Uint8Array | null {
  const family = isIP(text);
  if (family === 4) return parseIpv4(text);
  if (family === 6 && !text.includes('%')) return parseIpv6(text);
  return null;
}

/** A bare address means a single host (/32 or /128). Host bits beyond the prefix are an error. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr);
  if (!bytes) return 'an IPv4 or IPv6 address or CIDR block such as 192.0.2.0/24 or 2001:db8::/32';
  const family = bytes.length === 4 ? 4 : 6;
  const max = bytes.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return `a prefix length from 0 to ${max} after the "/"`;
  const network = maskBytes(bytes, prefix);
  if (!network.every((b, i) => b === bytes[i])) {
    return `no host bits after the prefix (did you mean ${formatNetwork(family, network)}/${prefix}?)`;
  }
  return { family, bytes: network, prefix };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

function formatNetwork(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return Array.from(bytes).join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
  }
  const hex = words.map((w) => w.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** True when `ip` (text) lies in `cidr`; IPv4-mapped IPv6 addresses match IPv4 blocks. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  let bytes = parseIp(ip);
  if (!bytes) return false;
  if (bytes.length === 16 && cidr.family === 4 && bytes.slice(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))) {
    bytes = bytes.slice(12);
  }
  if (bytes.length !== cidr.bytes.length) return false;
  const masked = maskBytes(bytes, cidr.prefix);
  return masked.every((b, i) => b === cidr.bytes[i]);
}
