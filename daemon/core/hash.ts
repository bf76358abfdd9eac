/**
 * All hashing of identities lives here. Structures are tagged (`['Datum', ...]`) and serialised canonically
 * (sorted object keys), so the same meaning always gives the same hash and different kinds never collide.
 */
import { createHash, hash } from 'node:crypto';

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
  return hashCanonical(canonicalJson(value));
}

/**
 * hashStruct of a value given as its canonical JSON already: for arrays of strings (a datum's key), that
 * is JSON.stringify's output, without canonicalJson's walk. One-shot hashing: planning 100k datums hashes
 * 100k times.
 */
export function hashCanonical(json: string): string {
  return hash('sha256', KEY_PREFIX + json);
}

const KEY_PREFIX = `${KEY_VERSION}\0`;

/** The object id git gives a blob with this content (so a blob can be recognised without reading it). */
export function gitBlobOid(content: string | Buffer): string {
  if (typeof content === 'string') return hash('sha1', `blob ${Buffer.byteLength(content)}\0${content}`);
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}
