/**
 * Writing large texts (a plan of 10^5 datums) to files: encoded once into a buffer that is
 * reused, and hashed from it, rather than a new Buffer per piece (tens of megabytes outside the heap until
 * the next collection) or an encoding each for the hash and the file.
 */
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

export class TextWriter {
  private buffer = Buffer.alloc(1 << 20);
  /** Bytes written so far. */
  length = 0;

  constructor(private readonly file: FileHandle, private readonly hash?: Hash) {}

  /** Writes all of `text` at the file's position, and adds it to the hash. */
  async write(text: string): Promise<void> {
    const size = Buffer.byteLength(text, 'utf8');
    if (size > this.buffer.length) this.buffer = Buffer.alloc(Math.max(size, 2 * this.buffer.length));
    const bytes = this.buffer.subarray(0, this.buffer.write(text, 0, 'utf8'));
    this.hash?.update(bytes);
    // A short write goes on from where it stopped.
    for (let at = 0; at < bytes.length; ) at += (await this.file.write(bytes, at)).bytesWritten;
    this.length += bytes.length;
  }
}
