/** Containers without a runtime: which container a spec's image names, and the call that is recorded. */
import { describe, expect, it } from 'vitest';
import { CMDEXEC, containersOfConfig, formatCall, ImageError, inContainer, resolveContainer } from '../../daemon/core/container.js';
import type { Datum } from '../../daemon/core/datums.js';

const config = containersOfConfig(
  new Map([
    ['datalad.containers.bb.image', '.datalad/environments/bb/image'],
    ['datalad.containers.bb.cmdexec', CMDEXEC.podman],
    ['datalad.containers.cv.image', '.datalad/environments/cv/image'],
    ['datalad.containers.cv.url', `pachyderm/opencv:1.0@sha256:${'a'.repeat(64)}`],
    ['datalad.containers.cv.cmdexec', '{img} {cmd}'],
    ['datalad.dataset.id', 'x'],
  ]),
);
const files = new Set(['.datalad/environments/bb/image', '.datalad/environments/cv/image', 'images/local.oci']);
const exists = (p: string) => files.has(p);

describe('resolveContainer', () => {
  it('finds a container by name, by image path, or by the reference it was added from', () => {
    expect(resolveContainer('bb', config, exists).image).toBe('.datalad/environments/bb/image');
    expect(resolveContainer('.datalad/environments/bb/image', config, exists).name).toBe('bb');
    expect(resolveContainer('pachyderm/opencv:1.0', config, exists).name).toBe('cv');
    expect(resolveContainer(`pachyderm/opencv:1.0@sha256:${'a'.repeat(64)}`, config, exists).name).toBe('cv');
    expect(resolveContainer('images/local.oci', config, exists)).toMatchObject({ image: 'images/local.oci', cmdexec: CMDEXEC.podman });
  });

  it('refuses an unpinned reference not in the dataset, one pinned but not added, and an unknown name', () => {
    const err = (image: string) => {
      try {
        resolveContainer(image, config, exists);
      } catch (e) {
        return e as ImageError;
      }
      throw new Error('resolved');
    };
    expect(err('library/ubuntu:22.04').message).toMatch(/without a digest/);
    expect(err('library/ubuntu:22.04').hint).toMatch(/containers add .*@sha256:/);
    expect(err(`library/ubuntu@sha256:${'b'.repeat(64)}`).message).toMatch(/is not in the dataset/);
    expect(err('nope').message).toMatch(/neither a container registered in \.datalad\/config nor a file/);
  });
});

describe('the recorded call', () => {
  it('fills {img} and {cmd} as datalad-container does, keeping doubled braces single', () => {
    expect(formatCall('run {{x}} {img} -- {cmd}', 'i.oci', 'echo hi')).toBe('run {x} i.oci -- echo hi');
  });

  it('makes /pfs/<input>/<matched> and /pfs/out as Pachyderm mounts them', () => {
    const datum: Datum = { name: 's1', inputs: [{ name: 'raw', repo: 'raw', path: 'raw/s1', matched: 's1', files: [] }, { name: 'all', repo: 'ref', path: 'ref', matched: '', files: [] }] };
    expect(inContainer(datum, 'p/s1', 'env X=1 cmd')).toBe(
      `sh -c 'mkdir -p /pfs && mkdir -p /pfs/raw && ln -s "$PWD"/raw/s1 /pfs/raw/s1 && mkdir -p /pfs && ln -s "$PWD"/ref /pfs/all && ln -s "$PWD"/p/s1 /pfs/out && exec "$@"' sh env X=1 cmd`,
    );
  });
});
