/**
 * Pachyderm input globs, compiled to anchored regular expressions with capture groups, as Pachyderm's own
 * glob package (ohmyglob) compiles them.
 *
 * Semantics (docs/spec.md has the user-facing table):
 * - `/` is the whole repo as one datum.
 * - Without `**`, a glob matches entries (files or directories) at exactly its depth: `/*` each top-level
 *   entry, `/*\/*` each entry two levels down. A matched directory brings its whole subtree.
 * - With `**`, a glob matches files at any depth (`/**` is every file; `/**\/*.nii` every .nii file).
 *   Directories are not matched then, because a directory and the files inside it would be overlapping
 *   datums writing into each other's output directories.
 * - `*` and `?` stay within one path segment, `[abc]`/`[!abc]`/`[^abc]` are character classes, `{a,b}`
 *   alternatives, `\` escapes the next character.
 * - `( )` are capture groups referenced as `$1`, `$2` by join_on / group_by, with `|` between
 *   alternatives. Pachyderm's extended globs are capture groups with a quantifier: `@(a|b)` one of,
 *   `?(a|b)` zero or one, `*(a|b)` zero or more, `+(a|b)` one or more, `!(a|b)` anything (within a segment)
 *   but these. As in ohmyglob, a negation is anchored at the end when nothing that could match follows it.
 */

export interface CompiledGlob {
  readonly source: string;
  /** `/`: the whole repo is one datum. */
  readonly isRoot: boolean;
  /** Number of `/`-separated segments a match has; undefined when the glob contains `**` (or a `/` in a group). */
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

/**
 * Markers placed while compiling, as ohmyglob places them (they are not valid in paths): where a negation
 * ends, and after anything that consumes input. A negation is anchored with `$` unless something that
 * consumes input follows it.
 */
const NEGATION_END = '\uFFFF';
const CONSUMES = '\uFFFE';
const SEGMENT_CHAR = '[^/]';
const QUANTIFIERS = new Set(['@', '?', '*', '+', '!']);

const escapeRegex = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A recursive-descent compiler of one glob's body (the part after the leading `/`). */
class GlobCompiler {
  private i = 0;
  groups = 0;
  slashInGroup = false;

  constructor(private readonly src: string, private readonly glob: string) {}

  compile(): string {
    const re = this.sequence(new Set(), 0);
    if (this.i < this.src.length) throw new GlobSyntaxError(`"${this.glob}" has a "${this.src[this.i]}" without its opening`, 'balance ( ) and { }');
    return re;
  }

  /** Elements up to one of `stop` (or the end); only its last negation keeps its end marker. */
  private sequence(stop: ReadonlySet<string>, nesting: number): string {
    let re = '';
    while (this.i < this.src.length && !stop.has(this.src[this.i]!)) re += this.element(nesting);
    const negations = re.split(NEGATION_END).length - 1;
    for (let n = 1; n < negations; n++) re = re.replace(NEGATION_END, '');
    return re;
  }

  private element(nesting: number): string {
    const src = this.src;
    const c = src[this.i]!;
    if (QUANTIFIERS.has(c) && src[this.i + 1] === '(') {
      this.i += 2;
      return this.group(c, nesting);
    }
    if (c === '(') {
      this.i += 1;
      return this.group('@', nesting);
    }
    this.i++;
    if (c === '/' && nesting > 0) this.slashInGroup = true;
    if (c === '*') {
      // `**(` is `*` then `*(`; `**/` also matches zero directories; `**` any depth.
      if (src[this.i] === '*' && src[this.i + 1] !== '(') {
        this.i++;
        if (src[this.i] === '/') {
          this.i++;
          return '(?:.*/)?' + CONSUMES;
        }
        return '.*' + CONSUMES;
      }
      return SEGMENT_CHAR + '*' + CONSUMES;
    }
    if (c === '?') return SEGMENT_CHAR;
    if (c === '[') return this.charClass();
    if (c === '{') return this.alternatives();
    if (c === '\\') {
      if (this.i >= src.length) throw new GlobSyntaxError(`"${this.glob}" ends in "\\"`, 'escape a character, or drop the backslash');
      return escapeRegex(src[this.i++]!) + CONSUMES;
    }
    if (c === ')' || c === '}') throw new GlobSyntaxError(`"${this.glob}" has a "${c}" without "${c === ')' ? '(' : '{'}"`, c === ')' ? 'balance the capture group parentheses' : 'write alternatives as {a,b}');
    if (c === ']') throw new GlobSyntaxError(`"${this.glob}" has a "]" without "["`, 'escape it as \\]');
    return escapeRegex(c) + CONSUMES;
  }

  /** A capture group after its `(`: alternatives separated by `|`, then its quantifier applied. */
  private group(quantifier: string, nesting: number): string {
    this.groups++;
    const alts: string[] = [];
    for (;;) {
      alts.push(this.sequence(new Set(['|', ')']), nesting + 1));
      if (this.i >= this.src.length) throw new GlobSyntaxError(`"${this.glob}" has an unclosed "("`, 'balance the capture group parentheses');
      if (this.src[this.i++] === ')') break;
    }
    const inner = alts.join('|');
    switch (quantifier) {
      case '*':
        return `((?:${inner})*)`;
      case '?':
        return `((?:${inner})?)`;
      case '+':
        return `((?:${inner})+)`;
      case '!':
        return `((?:(?!(?:${inner})${NEGATION_END})${SEGMENT_CHAR}*))`;
      default:
        return `(${inner})`;
    }
  }

  private alternatives(): string {
    const alts: string[] = [];
    for (;;) {
      alts.push(this.sequence(new Set([',', '}']), 1));
      if (this.i >= this.src.length) throw new GlobSyntaxError(`"${this.glob}" has an unclosed "{"`, 'write alternatives as {a,b}');
      if (this.src[this.i++] === '}') break;
    }
    return `(?:${alts.join('|')})`;
  }

  private charClass(): string {
    const end = this.src.indexOf(']', this.i + 1);
    if (end < 0) throw new GlobSyntaxError(`"${this.glob}" has an unclosed "["`, 'close the character class with "]"');
    let cls = this.src.slice(this.i, end);
    this.i = end + 1;
    if (cls.startsWith('!')) cls = '^' + cls.slice(1);
    return '[' + cls.replace(/\\/g, '\\\\') + ']' + CONSUMES;
  }
}

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
  const compiler = new GlobCompiler(src, glob);
  let re = compiler.compile();
  // As ohmyglob does: a negation is anchored at the end unless something that consumes input follows.
  const firstNegation = re.indexOf(NEGATION_END);
  if (firstNegation >= 0) re = re.split(NEGATION_END).join(re.slice(firstNegation + 1).includes(CONSUMES) ? '' : '$');
  re = re.split(CONSUMES).join('');
  let regex: RegExp;
  try {
    regex = new RegExp('^' + re + '$');
  } catch (e) {
    throw new GlobSyntaxError(`"${glob}" is not a valid glob: ${(e as Error).message}`);
  }
  const depth = src.includes('**') || compiler.slashInGroup ? undefined : src.split('/').length;
  return { source: glob, isRoot: false, depth, regex, groupCount: compiler.groups };
}

/** A path below the repo that a glob matched, with its capture groups (`$1` is captures[0]). */
export interface GlobMatch {
  readonly path: string;
  readonly captures: readonly string[];
}

/**
 * Matches a glob against the files of one repo (`relOf` gives a file's path relative to the repo). Returns each match once with
 * the files it brings (the file itself, or the subtree of a matched directory), in path order.
 */
export function matchGlob<F>(glob: CompiledGlob, files: readonly F[], relOf: (file: F) => string): { match: GlobMatch; files: F[] }[] {
  if (glob.isRoot) return files.length ? [{ match: { path: '', captures: [] }, files: [...files] }] : [];
  // In path order (a snapshot's), the files under one candidate are consecutive: no map of candidates is
  // needed. Files out of order are matched again with one.
  const out = matchFiles(glob, files, relOf, false) ?? matchFiles(glob, files, relOf, true)!;
  // Files come in path order, so matches mostly do too: sorting 10^5 of them again costs tens of ms.
  return out.every((m, i) => i === 0 || out[i - 1]!.match.path < m.match.path) ? out : out.sort((a, b) => (a.match.path < b.match.path ? -1 : 1));
}

/** The matches of `files`; undefined, without `mapped`, when the files are not in path order. */
function matchFiles<F>(glob: CompiledGlob, files: readonly F[], relOf: (file: F) => string, mapped: boolean): { match: GlobMatch; files: F[] }[] | undefined {
  const byMatch = mapped ? new Map<string, { match: GlobMatch; files: F[] } | null>() : undefined;
  const out: { match: GlobMatch; files: F[] }[] = [];
  let lastRel: string | undefined;
  let lastCandidate: string | undefined;
  let lastHit: { match: GlobMatch; files: F[] } | null = null;
  for (const f of files) {
    const rel = relOf(f);
    if (!mapped && lastRel !== undefined && !(lastRel < rel)) return undefined;
    lastRel = rel;
    let candidate: string;
    if (glob.depth === undefined) candidate = rel;
    else {
      // The ancestor (or the file itself) at exactly the glob's depth.
      let end = -1;
      for (let d = 0; d < glob.depth; d++) {
        end = rel.indexOf('/', end + 1);
        if (end < 0) break;
      }
      if (end < 0) {
        if (rel.split('/').length !== glob.depth) continue;
        candidate = rel;
      } else candidate = rel.slice(0, end);
    }
    let hit: { match: GlobMatch; files: F[] } | null | undefined = lastCandidate === candidate ? lastHit : byMatch?.get(candidate);
    if (hit === undefined) {
      hit = matchOf(glob, candidate);
      if (hit) out.push(hit);
      byMatch?.set(candidate, hit);
    }
    lastCandidate = candidate;
    lastHit = hit;
    hit?.files.push(f);
  }
  return out;
}

const NO_CAPTURES: readonly string[] = [];

/** A candidate's match (with no files yet), or null; without capture groups, no match array is made. */
function matchOf<F>(glob: CompiledGlob, candidate: string): { match: GlobMatch; files: F[] } | null {
  if (!glob.groupCount) return glob.regex.test(candidate) ? { match: { path: candidate, captures: NO_CAPTURES }, files: [] } : null;
  const m = glob.regex.exec(candidate);
  return m ? { match: { path: candidate, captures: m.slice(1).map((c) => c ?? '') }, files: [] } : null;
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
