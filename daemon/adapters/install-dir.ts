/**
 * Where minipach is installed: the directory holding its package.json, found from this module's place,
 * whether it runs from the sources (development, tests) or compiled from dist/ (the `minipach` bin).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findInstallDir(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'hooks'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`minipach's package.json not found above ${from}`);
  }
}

export const INSTALL_DIR = findInstallDir(path.dirname(fileURLToPath(import.meta.url)));

/** A file shipped with minipach (package.json, hooks/...), by its path in the package. */
export const installedFile = (rel: string): string => path.join(INSTALL_DIR, rel);

/** minipach's version, from its package.json. */
export const VERSION = (JSON.parse(readFileSync(installedFile('package.json'), 'utf8')) as { version: string }).version;
