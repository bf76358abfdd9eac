/**
 * Containers as datalad-container keeps them (pure): an image is a file of the dataset (annexed, under
 * `.datalad/environments/<name>/`), registered in `.datalad/config` as `datalad.containers.<name>.image`
 * (its path) and `.cmdexec` (the call, with `{img}` and `{cmd}`); `.url` says where it came from. A spec's
 * `transform.image` names a registered container, or an image file by its dataset path, or a registry
 * reference pinned by digest that a registered container was added from.
 *
 * The command then runs as `datalad containers-run` runs it: the record's `cmd` is the call with `{img}` and
 * `{cmd}` filled, and the image is among its `extra_inputs`, so `datalad rerun` on a plain clone gets the
 * image and replays the call with nothing but the container runtime installed. Inside, the Pachyderm paths
 * exist: `/pfs/<input name>/<matched path>` for each input and `/pfs/out` for the output directory.
 */
import { shellQuote } from './shell.js';
import type { Datum } from './datums.js';

export interface ContainerDef {
  readonly name: string;
  /** Dataset path of the image file. */
  readonly image: string;
  /** The call, with `{img}` (the image's path) and `{cmd}` (the command); literal braces doubled. */
  readonly cmdexec: string;
  /** Where the image came from (a registry reference), when it was added from one. */
  readonly url?: string;
}

/** Container runtimes minipach writes a call for (`minipach containers add --runtime`). */
export type Runtime = 'podman' | 'docker' | 'apptainer';
export const RUNTIMES: readonly Runtime[] = ['podman', 'docker', 'apptainer'];

/**
 * The call of each runtime: no network; the dataset (and its git directory, which a scratch checkout keeps
 * elsewhere) mounted at the same path inside, so annex links resolve as they do outside; the command's
 * standard input passed on. podman and docker take the image as an OCI archive, apptainer as a SIF file.
 */
const GIT_DIR = '"$(git rev-parse --path-format=absolute --git-common-dir)"';
export const CMDEXEC: Readonly<Record<Runtime, string>> = {
  podman: `podman run -i --rm --quiet --network=none -v "$PWD":"$PWD" -v ${GIT_DIR}:${GIT_DIR} -w "$PWD" oci-archive:{img} {cmd}`,
  docker: `sh -c 'exec docker run -i --rm --network=none -v "$PWD":"$PWD" -v "$1":"$1" -w "$PWD" "$(docker load -q -i "$0" | sed -n "s/^Loaded image[^:]*: //p")" "$@"' {img} ${GIT_DIR} {cmd}`,
  apptainer: `apptainer exec --containall --no-home --net --network none -B "$PWD" -B ${GIT_DIR} --pwd "$PWD" {img} {cmd}`,
};

/** Why a spec's image cannot be used: what to do about it is in the message. */
export class ImageError extends Error {
  override name = 'ImageError';
  constructor(message: string, readonly hint: string) {
    super(message);
  }
}

/** A registry reference: `host/name:tag`, `name@sha256:...`, `docker://...`. */
const isReference = (image: string) => /^[a-z]+:\/\//.test(image) || /@sha256:[0-9a-f]{64}$/.test(image) || (/^[\w.-]+(?::\d+)?\/[\w./-]+(?::[\w.-]+)?$/.test(image) && !image.startsWith('.'));

/**
 * The container a spec's `image` names, among those `.datalad/config` registers (`containers`), checked
 * against the commit's files (`exists`). Throws ImageError saying what to add or fix.
 */
export function resolveContainer(image: string, containers: ReadonlyMap<string, ContainerDef>, exists: (path: string) => boolean): ContainerDef {
  const byName = containers.get(image);
  const byPath = [...containers.values()].find((c) => c.image === image);
  const found = byName ?? byPath;
  if (found) {
    if (!exists(found.image)) throw new ImageError(`container "${found.name}" is registered, but its image ${found.image} is not in this commit`, `minipach containers add ${found.name} --from <image> again, and commit`);
    return found;
  }
  // A file of the commit is an image by path, even where its name looks like a reference (images/x.oci).
  if (exists(image)) return { name: image, image, cmdexec: CMDEXEC.podman };
  if (isReference(image)) {
    // Only an image pinned by digest is accepted, and only from the dataset: the spec pins it
    // (name@sha256:...), or the container added from that reference does (its url), so a Pachyderm spec
    // naming `pachyderm/opencv:1.0` runs unchanged once the dataset holds that image.
    const bare = (r: string) => r.replace(/^docker:\/\//, '');
    const added = [...containers.values()].find((c) => c.url && (bare(c.url) === bare(image) || bare(c.url).replace(/@sha256:[0-9a-f]{64}$/, '') === bare(image)));
    if (added) return resolveContainer(added.name, containers, exists);
    const pinned = /@sha256:[0-9a-f]{64}$/.test(bare(image));
    if (!pinned) throw new ImageError(`image "${image}" is a registry reference without a digest, and no container of the dataset was added from it: what it names can change`, `add it pinned: minipach containers add <name> --from ${image}@sha256:<digest> (or --from an archive of it with --url ${image}@sha256:<digest>)`);
    throw new ImageError(`image "${image}" is not in the dataset`, `add it, so that every run has its exact bytes: minipach containers add <name> --from ${image}`);
  }
  throw new ImageError(`image "${image}" is neither a container registered in .datalad/config nor a file of this commit`, 'minipach containers add <name> --from <oci-archive | rootfs tar | registry ref@digest>; see minipach containers list');
}

/** Where datalad keeps a dataset's own configuration (in git), and the keys of its containers there. */
export const DATALAD_CONFIG = '.datalad/config';
export const CONTAINER_KEYS = '^datalad\\.containers\\.';

/** Containers registered in `.datalad/config`, from its `datalad.containers.<name>.<key>` entries. */
export function containersOfConfig(entries: ReadonlyMap<string, string>): Map<string, ContainerDef> {
  const fields = new Map<string, Record<string, string>>();
  for (const [key, value] of entries) {
    const m = /^datalad\.containers\.(.+)\.(image|cmdexec|url)$/.exec(key);
    if (m) fields.set(m[1]!, { ...fields.get(m[1]!), [m[2]!]: value });
  }
  const out = new Map<string, ContainerDef>();
  for (const [name, f] of fields) if (f['image']) out.set(name, { name, image: f['image'], cmdexec: f['cmdexec'] ?? `${f['image']} {cmd}`, ...(f['url'] ? { url: f['url'] } : {}) });
  return out;
}

/**
 * The command inside the container: the Pachyderm paths made (`/pfs/<input name>`, `/pfs/out`, links into the
 * dataset mounted at its own path), then `run` from the dataset root. The image needs `sh`, `mkdir` and `ln`.
 */
export function inContainer(datum: Datum, outputDir: string, run: string): string {
  // As Pachyderm mounts them: the repo at /pfs/<input name>, holding the datum's matched path under its own
  // name (/pfs/images/a.png for glob "/*"); the whole repo for glob "/".
  const links = datum.inputs.map((i) => {
    const at = i.matched ? `/pfs/${i.name}/${i.matched}` : `/pfs/${i.name}`;
    return `mkdir -p ${shellQuote(at.slice(0, at.lastIndexOf('/')))} && ln -s "$PWD"/${shellQuote(i.path)} ${shellQuote(at)}`;
  });
  const steps = ['mkdir -p /pfs', ...links, `ln -s "$PWD"/${shellQuote(outputDir)} /pfs/out`, 'exec "$@"'];
  return `sh -c ${shellQuote(steps.join(' && '))} sh ${run}`;
}

/** `cmdexec` with the image and command filled in, as datalad-container fills it (Python's str.format). */
export function formatCall(cmdexec: string, image: string, cmd: string): string {
  return cmdexec.replace(/\{\{|\}\}|\{(img|cmd|img_dspath)\}/g, (all, name: string | undefined) => (all === '{{' ? '{' : all === '}}' ? '}' : name === 'img' ? image : name === 'cmd' ? cmd : '.'));
}
