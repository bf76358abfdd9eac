import { existsSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { openDataset } from '../options.js';
import { RUNTIMES, type Runtime } from '../../core/container.js';
import { out } from '../printers.js';

/** `minipach containers add | list`: images in the dataset, as datalad-container keeps them. */
export function register(program: Command): void {
  const containers = program.command('containers').description('container images in the dataset, for transform.image (as datalad-container keeps them)');
  containers
    .command('add')
    .description('put an image into the dataset and register it: .datalad/environments/NAME/image and .datalad/config')
    .argument('<name>', 'the name specs give as transform.image')
    .requiredOption('--from <source>', 'an OCI archive, a root file system tarball, or a registry reference pinned by digest (name@sha256:...)')
    .addOption(new Option('--runtime <runtime>', 'the runtime its recorded call uses').choices(RUNTIMES).default('podman'))
    .option('--url <ref@digest>', 'with an archive: the registry image it is (checked against its manifest digest); specs naming that reference use it')
    .argument('[dataset]', 'dataset directory', '.')
    .action(async (name: string, dir: string, o: { from: string; runtime: Runtime; url?: string }) => {
      const ds = await openDataset(dir);
      const { addContainer } = await import('../../adapters/containers.js');
      const c = await addContainer(ds, name, o.from, o.runtime, o.url);
      out(`added container ${c.name}: ${c.image} (${o.runtime})${c.url ? ` from ${c.url}` : ''}; use it with transform.image: ${c.name}`);
    });
  containers
    .command('list')
    .description('the containers registered in .datalad/config')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { json?: boolean }) => {
      const ds = await openDataset(dir);
      const { registeredContainers } = await import('../../adapters/containers.js');
      const found = [...(await registeredContainers(ds)).values()];
      // An annexed image without its content here is a link to nothing.
      const withContent = found.map((c) => ({ ...c, present: existsSync(path.join(ds.dir, c.image)) }));
      if (o.json) return out(JSON.stringify(withContent, null, 2));
      if (!withContent.length) return out('no containers registered (add one: minipach containers add NAME --from IMAGE)');
      for (const c of withContent) out(`${c.name.padEnd(20)} ${c.image}${c.present ? '' : ' (content not here: datalad get it)'}${c.url ? `  from ${c.url}` : ''}\n${' '.repeat(21)}${c.cmdexec}`);
    });
}
