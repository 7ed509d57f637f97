/*
 * `mynetworks` as a matcher: is a client address inside one of the configured CIDR blocks? Built on
 * config/cidr.ts (its parser and containment test). Pure; a block that does not parse is skipped (the
 * configuration schema has already refused it), and an address that does not parse never matches.
 */
import { cidrContains, parseCidr, type Cidr } from '../config/cidr.js';

export type NetworkMatcher = (address: string) => boolean;

export function createNetworkMatcher(blocks: readonly string[]): NetworkMatcher {
  const cidrs: Cidr[] = [];
  for (const text of blocks) {
    const parsed = parseCidr(text);
    if (typeof parsed !== 'string') cidrs.push(parsed);
  }
  return (address: string) => {
    // Some socket layers report IPv6 with brackets; a zone id (fe80::1%eth0) is never trusted.
    const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
    return cidrs.some((c) => cidrContains(c, bare));
  };
}
