/**
 * Writing large texts (a plan of 10^5 datums, a snapshot) to files as strings: node encodes a string
 * natively and frees the bytes at once, where a Buffer of each would be tens of megabytes outside the heap
 * until the next collection.
 */
import type { FileHandle } from 'node:fs/promises';

/** Writes all of `text` at the file's position (a short write goes on from where it stopped). */
export async function writeText(file: FileHandle, text: string): Promise<number> {
  const { bytesWritten } = await file.write(text, null, 'utf8');
  const length = Buffer.byteLength(text, 'utf8');
  if (bytesWritten === length) return length;
  const bytes = Buffer.from(text, 'utf8');
  for (let at = bytesWritten; at < length; ) at += (await file.write(bytes, at)).bytesWritten;
  return length;
}
