/*
 * BDAT chunk accounting (RFC 3030). Pure. A BDAT chunk is exactly `size` raw octets, no dot-stuffing and no
 * terminator; they are always consumed, even when the command is refused, so that message bytes are never
 * read as commands. The running total is checked against the size limit before any byte is kept.
 */

export class BdatTotal {
  total = 0;
  overflow = false;

  constructor(readonly limit: number) {}

  /** Announces a chunk; true when its bytes may be kept (the message is still within the limit). */
  announce(size: number): boolean {
    this.total += size;
    if (this.total > this.limit) this.overflow = true;
    return !this.overflow;
  }
}

export interface ChunkRead {
  /** the octets of this chunk found in the input (a view, possibly empty) */
  piece: Buffer;
  /** offset in the input after them */
  next: number;
  /** the whole chunk has been read */
  done: boolean;
}

export class BdatChunk {
  /** octets still to read */
  remaining: number;

  constructor(readonly size: number) {
    this.remaining = size;
  }

  read(input: Buffer, offset: number): ChunkRead {
    const take = Math.min(this.remaining, input.length - offset);
    this.remaining -= take;
    return { piece: input.subarray(offset, offset + take), next: offset + take, done: this.remaining === 0 };
  }
}
