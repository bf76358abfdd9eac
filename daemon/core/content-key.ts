/**
 * Content keys from what git stores, without reading file content: annexed files are symlinks whose target
 * ends in the key, or unlocked pointer files holding `/annex/objects/KEY`; plain git files are their blob id.
 * Pure parsers; the bulk reading is in adapters/snapshot-reader.ts.
 */

/** The annex key a symlink target points at, e.g. `../../.git/annex/objects/F4/53/K/K` -> `K`. */
export function annexKeyFromLinkTarget(target: string): string | undefined {
  const i = target.lastIndexOf('/annex/objects/');
  if (i < 0) return undefined;
  const key = target.slice(target.lastIndexOf('/') + 1);
  return isAnnexKey(key) ? key : undefined;
}

const ANNEX_OBJECTS = Buffer.from('/annex/objects/');

/** Whether `blob` holds `part` at `at`. */
function holdsAt(blob: Uint8Array, part: Uint8Array, at: number): boolean {
  for (let k = 0; k < part.length; k++) if (blob[at + k] !== part[k]) return false;
  return true;
}

/**
 * The annex key a blob names, read from its bytes (`blob[start, end)`): a link target's last part, or an
 * unlocked file's pointer. What annexKeyFromPointer and annexKeyFromLinkTarget give its text, without
 * decoding the whole blob; byte loops, not Buffer methods (a snapshot reads 10^5 blobs).
 */
export function annexKeyInBlob(blob: Buffer, start = 0, end = blob.length): string | undefined {
  if (end - start >= ANNEX_OBJECTS.length && holdsAt(blob, ANNEX_OBJECTS, start)) {
    const key = annexKeyFromPointer(blob.toString('utf8', start, Math.min(end, start + MAX_POINTER_SIZE)));
    if (key) return key;
  }
  // '/' is one byte in UTF-8 and never part of a longer character: searching bytes is searching text.
  let slash = end - 1;
  let ascii = true;
  for (; slash >= start && blob[slash] !== 0x2f; slash--) if (blob[slash]! >= 0x80) ascii = false;
  if (slash < start) return undefined;
  let marker = slash - ANNEX_OBJECTS.length + 1;
  while (marker >= start && !(blob[marker] === 0x2f && holdsAt(blob, ANNEX_OBJECTS, marker))) marker--;
  if (marker < start) return undefined;
  const key = blob.toString(ascii ? 'latin1' : 'utf8', slash + 1, end);
  return isAnnexKey(key) ? key : undefined;
}

/** The annex key in an unlocked file's pointer content (`/annex/objects/KEY\n`). */
export function annexKeyFromPointer(content: string): string | undefined {
  if (!content.startsWith('/annex/objects/')) return undefined;
  const key = content.slice('/annex/objects/'.length).split('\n', 1)[0]!.trim();
  return isAnnexKey(key) && !key.includes('/') ? key : undefined;
}

/** Whether a file's bytes may be an unlocked annexed file's pointer (what git-annex's smudge filter replaces). */
export function isAnnexPointer(bytes: Buffer | string): boolean {
  return typeof bytes === 'string' ? bytes.startsWith('/annex/objects/') : bytes.length >= ANNEX_OBJECTS.length && holdsAt(bytes, ANNEX_OBJECTS, 0);
}

/** Pointer files are tiny; only blobs under this size can be one, so only those are read. */
export const MAX_POINTER_SIZE = 1024;

/** `BACKEND-[fields-]-NAME`, e.g. `MD5E-s6--b1946ac92492d2347c6235b4d2611184.txt`. */
export function isAnnexKey(s: string): boolean {
  // /^[A-Z0-9]+E?-[^/\n]*--[^/\n]+$/ (no line breaks: a pointer's trailing newline is not part of its key),
  // by hand: a snapshot asks it of 10^5 keys.
  const dash = s.indexOf('-');
  if (dash < 1) return false;
  for (let i = 0; i < dash; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39))) return false;
  }
  const sep = s.indexOf('--', dash + 1);
  if (sep < 0 || sep + 2 >= s.length) return false;
  for (let i = dash + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2f || c === 0x0a) return false;
  }
  return true;
}

/**
 * The key as compared in datum keys: the extension of `*E` backends is dropped
 * (`MD5E-s6--<md5>.txt` ~ `MD5E-s6--<md5>`), because the relative path, which holds the extension,
 * is already part of the datum key. Other backends' keys are used as they are.
 */
export function comparableAnnexKey(key: string): string {
  const sep = key.indexOf('--');
  const backend = key.slice(0, key.indexOf('-'));
  if (sep < 0 || !backend.endsWith('E')) return key;
  const name = key.slice(sep + 2);
  const dot = name.indexOf('.');
  return dot < 0 ? key : key.slice(0, sep + 2 + dot);
}

/** Content key of a file kept in git itself. */
export function gitContentKey(oid: string): string {
  return `GIT-${oid}`;
}

/** A file's content key: its annex key's (without a `*E` backend's extension), else its blob id's. */
export function contentKeyOf(oid: string, annexKey: string | undefined): string {
  return annexKey ? comparableAnnexKey(annexKey) : gitContentKey(oid);
}

/**
 * The relative symlink an annexed file at `path` needs to reach the object store, given any other link
 * target for the same key (the part from `.git/annex/objects/` on is path-independent).
 */
export function retargetAnnexLink(target: string, path: string): string {
  const i = target.indexOf('.git/annex/objects/');
  if (i < 0) return target;
  const depth = path.split('/').length - 1;
  return '../'.repeat(depth) + target.slice(i);
}
