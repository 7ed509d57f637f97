/*
 * The bytes of one message while it is being received. Large pieces are kept as views of the input
 * (no copy); small ones are copied into shared blocks, so a client sending one byte per packet cannot
 * make us hold millions of tiny buffers. Bounded by the caller (the size limit is checked before pushing).
 */

const SMALL = 8 * 1024;
/** Blocks start small (most messages are a few KB) and double up to BLOCK. */
const FIRST_BLOCK = 8 * 1024;
const BLOCK = 64 * 1024;

export class MessageContent {
  private parts: Buffer[] = [];
  private block: Buffer | null = null;
  private used = 0;
  private nextBlock = FIRST_BLOCK;
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
      this.block = Buffer.allocUnsafe(this.nextBlock);
      this.nextBlock = Math.min(BLOCK, this.nextBlock * 2);
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
    this.nextBlock = FIRST_BLOCK;
  }

  /**
   * The message in one buffer; with `prefix`, the prefix followed by the message, made in one copy
   * (the commit path puts our trace headers in front without copying the message twice).
   */
  toBuffer(prefix?: Buffer): Buffer {
    this.seal();
    if (prefix && prefix.length > 0) return Buffer.concat([prefix, ...this.parts], prefix.length + this.size);
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }

  private seal(): void {
    if (this.block && this.used > 0) this.parts.push(this.block.subarray(0, this.used));
    this.block = null;
    this.used = 0;
  }
}
