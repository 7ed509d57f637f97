/*
 * The bytes of one message while it is being received. Large pieces are kept as views of the input
 * (no copy); small ones are copied into shared blocks, so a client sending one byte per packet cannot
 * make us hold millions of tiny buffers. Bounded by the caller (the size limit is checked before pushing).
 */

const SMALL = 8 * 1024;
const BLOCK = 64 * 1024;

export class MessageContent {
  private parts: Buffer[] = [];
  private block: Buffer | null = null;
  private used = 0;
  /** octets held */
  size = 0;

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.size += piece.length;
    if (piece.length >= SMALL) {
      this.seal();
      this.parts.push(piece);
      return;
    }
    if (!this.block || this.used + piece.length > this.block.length) {
      this.seal();
      this.block = Buffer.allocUnsafe(BLOCK);
    }
    piece.copy(this.block, this.used);
    this.used += piece.length;
  }

  /** Drops everything (over the size limit: nothing more is kept). */
  clear(): void {
    this.parts = [];
    this.block = null;
    this.used = 0;
    this.size = 0;
  }

  toBuffer(): Buffer {
    this.seal();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }

  private seal(): void {
    if (this.block && this.used > 0) this.parts.push(this.block.subarray(0, this.used));
    this.block = null;
    this.used = 0;
  }
}
