/**
 * Pachyderm input globs, compiled to anchored regular expressions with capture groups.
 *
 * Semantics (docs/spec.md has the user-facing table):
 * - `/` is the whole repo as one datum.
 * - Without `**`, a glob matches entries (files or directories) at exactly its depth: `/*` each top-level
 *   entry, `/*\/*` each entry two levels down. A matched directory brings its whole subtree.
 * - With `**`, a glob matches files at any depth (`/**` is every file; `/**\/*.nii` every .nii file).
 *   Directories are not matched then, because a directory and the files inside it would be overlapping
 *   datums writing into each other's output directories.
 * - `*` and `?` stay within one path segment, `[abc]`/`[!abc]` are character classes, `{a,b}` alternatives,
 *   and `( )` capture groups referenced as `$1`, `$2` by join_on / group_by.
 */

export interface CompiledGlob {
  readonly source: string;
  /** `/`: the whole repo is one datum. */
  readonly isRoot: boolean;
  /** Number of `/`-separated segments a match has; undefined when the glob contains `**`. */
  readonly depth: number | undefined;
  readonly regex: RegExp;
  readonly groupCount: number;
}

/** A glob that cannot be compiled; `hint` suggests the fix. Converted to a SpecError by the spec loader. */
export class GlobSyntaxError extends Error {
  constructor(readonly problem: string, readonly hint?: string) {
    super(problem);
  }
}

const REGEX_SPECIAL = new Set(['.', '+', '^', '$', '|', '\\', '=', '!', ':']);

export function compileGlob(glob: string): CompiledGlob {
  if (!glob.startsWith('/')) {
    throw new GlobSyntaxError(`"${glob}" must start with "/"`, `did you mean "/${glob}"?`);
  }
  const body = glob.replace(/\/+$/, '');
  if (body === '') {
    return { source: glob, isRoot: true, depth: 0, regex: /^$/, groupCount: 0 };
  }
  if (body.split('/').some((s, i) => i > 0 && (s === '' || s === '.' || s === '..'))) {
    throw new GlobSyntaxError(`"${glob}" has an empty, "." or ".." segment`, 'globs name paths inside the repo');
  }
  const src = body.slice(1);
  let re = '';
  let groups = 0;
  let open = 0;
  let braces = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '*') {
      if (src[i + 1] === '*') {
        // `**/` also matches zero directories.
        if (src[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = src.indexOf(']', i + 2);
      if (end < 0) throw new GlobSyntaxError(`"${glob}" has an unclosed "["`, 'close the character class with "]"');
      let cls = src.slice(i + 1, end);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (c === '(') {
      groups++;
      open++;
      re += '(';
    } else if (c === ')') {
      if (open === 0) throw new GlobSyntaxError(`"${glob}" has a ")" without "("`, 'balance the capture group parentheses');
      open--;
      re += ')';
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}') {
      if (braces === 0) throw new GlobSyntaxError(`"${glob}" has a "}" without "{"`, 'write alternatives as {a,b}');
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else if (c === ']') throw new GlobSyntaxError(`"${glob}" has a "]" without "["`, 'escape-free globs cannot match "]"');
    else re += REGEX_SPECIAL.has(c) ? '\\' + c : c;
  }
  if (open > 0) throw new GlobSyntaxError(`"${glob}" has an unclosed "("`, 'balance the capture group parentheses');
  if (braces > 0) throw new GlobSyntaxError(`"${glob}" has an unclosed "{"`, 'write alternatives as {a,b}');
  let regex: RegExp;
  try {
    regex = new RegExp('^' + re + '$');
  } catch (e) {
    throw new GlobSyntaxError(`"${glob}" is not a valid glob: ${(e as Error).message}`);
  }
  const depth = src.includes('**') ? undefined : src.split('/').length;
  return { source: glob, isRoot: false, depth, regex, groupCount: groups };
}

/** A path below the repo that a glob matched, with its capture groups (`$1` is captures[0]). */
export interface GlobMatch {
  readonly path: string;
  readonly captures: readonly string[];
}

/**
 * Matches a glob against the files of one repo (paths relative to the repo). Returns each match once with
 * the files it brings (the file itself, or the subtree of a matched directory), in path order.
 */
export function matchGlob<F extends { readonly rel: string }>(
  glob: CompiledGlob,
  files: readonly F[],
): { match: GlobMatch; files: F[] }[] {
  if (glob.isRoot) return files.length ? [{ match: { path: '', captures: [] }, files: [...files] }] : [];
  const byMatch = new Map<string, { match: GlobMatch; files: F[] }>();
  for (const f of files) {
    let candidate: string;
    if (glob.depth === undefined) candidate = f.rel;
    else {
      // The ancestor (or the file itself) at exactly the glob's depth.
      let end = -1;
      for (let d = 0; d < glob.depth; d++) {
        end = f.rel.indexOf('/', end + 1);
        if (end < 0) break;
      }
      if (end < 0) {
        if (f.rel.split('/').length !== glob.depth) continue;
        candidate = f.rel;
      } else candidate = f.rel.slice(0, end);
    }
    let hit = byMatch.get(candidate);
    if (!hit) {
      const m = glob.regex.exec(candidate);
      if (!m) continue;
      hit = { match: { path: candidate, captures: m.slice(1).map((c) => c ?? '') }, files: [] };
      byMatch.set(candidate, hit);
    }
    hit.files.push(f);
  }
  return [...byMatch.values()].sort((a, b) => (a.match.path < b.match.path ? -1 : 1));
}

/**
 * Expands `$1`..`$9` in a join_on / group_by template with a match's captures. Throws GlobSyntaxError when
 * the template refers to a group the glob does not have.
 */
export function expandCaptureTemplate(template: string, groupCount: number, captures?: readonly string[]): string {
  return template.replace(/\$(\d+)/g, (_, n: string) => {
    const i = Number(n);
    if (i < 1 || i > groupCount) {
      throw new GlobSyntaxError(
        `"${template}" refers to $${i} but the glob has ${groupCount} capture group${groupCount === 1 ? '' : 's'}`,
        groupCount ? `use $1..$${groupCount}` : 'add parentheses around the part of the glob to capture',
      );
    }
    return captures ? captures[i - 1]! : '';
  });
}
