/**
 * Vitest global set-up: the CLI the tests run (bin/minipach.js) is the compiled one, so it is built from the
 * sources under test first; a stale dist/ would test yesterday's code.
 */
import { execa } from 'execa';

export default async function build(): Promise<void> {
  await execa('npm', ['run', '--silent', 'build'], { cwd: new URL('..', import.meta.url).pathname, stdio: 'inherit' });
}
