/**
 * Putting a container image into a dataset, as `datalad containers-add` does: the image file under
 * `.datalad/environments/<name>/image` (annexed by the dataset's rules), registered in `.datalad/config`
 * with its call for the chosen runtime, saved. The image comes from an OCI archive (copied), a root file
 * system tarball (`podman import`, then saved as an OCI archive) or a registry reference pinned by digest
 * (`podman pull`, saved likewise).
 */
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CMDEXEC, CONTAINER_KEYS, containersOfConfig, DATALAD_CONFIG, type ContainerDef, type Runtime } from '../core/container.js';
import { UsageError } from '../core/errors.js';
import type { Dataset } from './dataset.js';
import { dataladSave } from './datalad.js';
import { runUnchecked } from './process.js';

export const imagePath = (name: string) => `.datalad/environments/${name}/image`;

/** The containers registered in a dataset's `.datalad/config` as it is in the working tree. */
export async function registeredContainers(ds: Dataset): Promise<Map<string, ContainerDef>> {
  return containersOfConfig(await ds.repo.configMatching(CONTAINER_KEYS, { file: DATALAD_CONFIG }));
}

export async function addContainer(ds: Dataset, name: string, from: string, runtime: Runtime, origin?: string): Promise<ContainerDef> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new UsageError(`"${name}" cannot name a container: use letters, digits, ".", "_" and "-"`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'minipach-image-'));
  try {
    const archive = path.join(tmp, 'image');
    const isFile = await stat(from).then((s) => s.isFile(), () => false);
    let url: string | undefined;
    if (isFile && (runtime === 'apptainer' || (await isOciArchive(from)))) {
      await copyFile(from, archive);
      if (origin) {
        // An archive said to be a registry image: it must be that image, byte for byte (its manifest digest).
        const digest = /@(sha256:[0-9a-f]{64})$/.exec(origin)?.[1];
        const actual = runtime === 'apptainer' ? undefined : await manifestDigest(from);
        if (!digest) throw new UsageError(`--url ${origin} is not pinned by digest (name@sha256:<64 hex>)`);
        if (actual && actual !== digest) throw new UsageError(`${from} is not ${origin}: its manifest digest is ${actual}`);
        url = origin;
      }
    }
    else if (isFile) {
      // A root file system tarball: an image of it, saved as an OCI archive.
      const ref = `localhost/minipach-${name.toLowerCase()}:latest`;
      await podman(['import', from, ref], `import ${from}`);
      await podman(['save', '--format', 'oci-archive', '-o', archive, ref], `save ${ref}`);
    } else {
      if (!/@sha256:[0-9a-f]{64}$/.test(from)) throw new UsageError(`${from} is neither a file nor a registry reference pinned by digest (name@sha256:<64 hex>): a tag can change what it names`);
      url = from;
      await podman(['pull', from], `pull ${from}`);
      await podman(['save', '--format', 'oci-archive', '-o', archive, from], `save ${from}`);
    }
    const target = imagePath(name);
    await mkdir(path.join(ds.dir, path.dirname(target)), { recursive: true });
    await rm(path.join(ds.dir, target), { force: true });
    await copyFile(archive, path.join(ds.dir, target));
    const set = (key: string, value: string) => ds.repo.setConfig(`datalad.containers.${name}.${key}`, value, { file: DATALAD_CONFIG });
    await set('image', target);
    await set('cmdexec', CMDEXEC[runtime]);
    if (url) await set('url', url);
    await dataladSave(ds.dir, `[minipach] add container ${name}`, [DATALAD_CONFIG, target]);
    return { name, image: target, cmdexec: CMDEXEC[runtime], ...(url ? { url } : {}) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The digest of the (first) image manifest of an OCI archive, from its index.json: the image's identity in a registry. */
async function manifestDigest(file: string): Promise<string | undefined> {
  const r = await runUnchecked(['tar', '-xOf', file, 'index.json']);
  if (r.exitCode !== 0) return undefined;
  return (JSON.parse(r.stdout) as { manifests?: { digest?: string }[] }).manifests?.[0]?.digest;
}

/** An OCI image layout in a tar file has an `oci-layout` file at its root. */
async function isOciArchive(file: string): Promise<boolean> {
  const r = await runUnchecked(['tar', '-tf', file]);
  return r.exitCode === 0 && r.stdout.split('\n').some((l) => l.replace(/^\.\//, '') === 'oci-layout');
}

async function podman(args: string[], what: string): Promise<void> {
  const r = await runUnchecked(['podman', ...args]).catch((e: Error) => ({ exitCode: undefined, stderr: e.message, stdout: '', timedOut: false }));
  if (r.exitCode === 0) return;
  const missing = /ENOENT|not found/.test(r.stderr) && r.exitCode === undefined;
  throw new UsageError(missing ? `podman is not installed here: install it (apt install podman) to ${what}, or add an OCI archive made elsewhere` : `podman could not ${what}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
}
