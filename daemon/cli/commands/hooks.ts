import path from 'node:path';
import type { Command } from 'commander';
import { out } from '../printers.js';

export function register(program: Command): void {
  const hooks = program.command('hooks').description('git hooks that hand pushes to the daemon');
  hooks
    .command('install')
    .description('install post-receive and post-update-annex into a repository (bare or not); an existing hook is chained')
    .argument('<repo>', 'the repository people push to')
    .option('--json', 'print JSON')
    .action(async (repo: string, o: { json?: boolean }) => {
      const r = await (await import('../../sources/git-hooks.js')).installHooks(repo);
      if (o.json) return out(JSON.stringify(r, null, 2));
      for (const c of r.changes) out(`${c.hook}: ${c.action} (${c.path})`);
      out(`pushes are spooled in ${path.join(r.gitDir, 'minipach', 'spool')}; a daemon whose dataset has this repository as its clone or remote picks them up`);
    });
  hooks
    .command('uninstall')
    .description("remove minipach's hooks, restoring any hook they chained")
    .argument('<repo>', 'the repository')
    .option('--json', 'print JSON')
    .action(async (repo: string, o: { json?: boolean }) => {
      const changes = await (await import('../../sources/git-hooks.js')).uninstallHooks(repo);
      if (o.json) return out(JSON.stringify(changes, null, 2));
      for (const c of changes) out(`${c.hook}: ${c.action} (${c.path})`);
    });
}
