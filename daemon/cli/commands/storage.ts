import type { Command } from 'commander';
import { openDataset } from '../options.js';
import { out } from '../printers.js';

interface InitFlags {
  name: string;
  bucket: string;
  endpoint: string;
  region?: string;
  prefix?: string;
  credentials?: string;
  publishFor?: string;
}

/** `minipach storage init | check`: an S3 bucket (MinIO, Ceph, AWS) as the dataset's content store. */
export function register(program: Command): void {
  const storage = program.command('storage').description("an S3 bucket (MinIO, Ceph, AWS) as the dataset's content store: a git-annex special remote");
  storage
    .command('init')
    .description('set up the special remote in the dataset (git annex initremote type=S3) and check that the bucket answers')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--name <name>', 'the special remote\'s name (the daemon\'s storage.remote)', 's3')
    .requiredOption('--bucket <bucket>', 'the bucket (git-annex creates it when missing)')
    .requiredOption('--endpoint <url>', 'the S3 endpoint, e.g. http://minio:9000')
    .option('--region <region>', 'the AWS region (git-annex datacenter)')
    .option('--prefix <prefix>', 'a prefix for every object name (several datasets in one bucket)')
    .option('--credentials <file>', 'a file with AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines (default: those environment variables)')
    .option('--publish-for <remote>', "the git remote whose `datalad push` puts content into the bucket first (default: origin, when there is one)")
    .action(async (dir: string, o: InitFlags) => {
      const { ds, Storage } = await withCredentials(dir, o.credentials);
      const s = await Storage.init(ds.annex, { name: o.name, bucket: o.bucket, endpoint: o.endpoint, region: o.region, filePrefix: o.prefix });
      const publishFor = o.publishFor ?? ((await ds.repo.remoteUrl('origin')) ? 'origin' : undefined);
      // `datalad push --to origin` then copies content to the bucket before pushing git (and the git-annex branch).
      if (publishFor) await ds.repo.setConfig(`remote.${publishFor}.datalad-publish-depends`, s.name);
      out(`storage ${s.name}: bucket ${s.remote.bucket} at ${o.endpoint} answers; content goes there with: git annex copy --to ${s.name}` + (publishFor ? ` (datalad push --to ${publishFor} does it first)` : ''));
      out(`next: push the git-annex branch (datalad push, or git push ${publishFor ?? '<remote>'} git-annex) and set storage: {remote: ${s.name}} for this dataset in the daemon's configuration`);
    });
  storage
    .command('check')
    .description('check that the dataset\'s storage answers with these credentials')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--name <name>', "the special remote's name", 's3')
    .option('--credentials <file>', 'a credentials file (default: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)')
    .action(async (dir: string, o: { name: string; credentials?: string }) => {
      const { ds, Storage } = await withCredentials(dir, o.credentials);
      const s = await Storage.open(ds.annex, o.name);
      await s.check();
      out(`storage ${s.name}: bucket ${s.remote.bucket} at ${s.remote.protocol}://${s.remote.host}${s.remote.port ? `:${s.remote.port}` : ''} answers`);
    });
}

/** The dataset, and the storage adapter with the credentials of `file` (else the environment's) in place. */
async function withCredentials(dir: string, file: string | undefined) {
  const ds = await openDataset(dir);
  const { loadCredentialsFile, Storage } = await import('../../adapters/storage.js');
  if (file) await loadCredentialsFile(file);
  return { ds, Storage };
}
