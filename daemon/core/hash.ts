/**
 * All hashing of identities lives here. Structures are tagged (`['Datum', ...]`) and serialised canonically
 * (sorted object keys), so the same meaning always gives the same hash and different kinds never collide.
 */
import { createHash } from 'node:crypto';

/** Bump when the meaning of a key changes: every datum gets a new key and is recomputed once. */
export const KEY_VERSION = 'minipach/1';

export type Hashable = string | number | boolean | null | readonly Hashable[] | { readonly [k: string]: Hashable };

export function canonicalJson(value: Hashable): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map((v) => canonicalJson(v as Hashable)).join(',') + ']';
  const obj = value as { readonly [k: string]: Hashable };
  return (
    '{' +
    Object.keys(obj)
      .sort()
      .map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k]!))
      .join(',') +
    '}'
  );
}

export function hashStruct(value: Hashable): string {
  return createHash('sha256').update(KEY_VERSION).update('\0').update(canonicalJson(value)).digest('hex');
}

/** The object id git gives a blob with this content (so a blob can be recognised without reading it). */
export function gitBlobOid(content: string | Buffer): string {
  const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
}
