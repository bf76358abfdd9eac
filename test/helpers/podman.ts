/**
 * Real podman for the tests, configured as this machine needs it (../shared/DESIGN.md): the runc runtime,
 * cgroupfs, the vfs storage driver and ulimits of at most 1024, in files named by CONTAINERS_CONF and
 * CONTAINERS_STORAGE_CONF, with its storage in a temporary directory. Images are built from busybox-static
 * (there is no registry here): a root file system tarball, imported and saved as an OCI archive.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export interface Podman {
  /** CONTAINERS_CONF and CONTAINERS_STORAGE_CONF for every process that runs podman. */
  readonly env: Record<string, string>;
  /** A root file system tarball: busybox (static) as /bin/* and the extra files given. */
  rootfs(name: string, extra?: Record<string, string>): Promise<string>;
  /** An OCI archive of a root file system tarball. */
  ociArchive(rootfs: string, tag: string): Promise<string>;
  cleanup(): void;
}

const BUSYBOX = '/bin/busybox';

export function podman(): Podman {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-podman-'));
  const conf = path.join(dir, 'containers.conf');
  const storage = path.join(dir, 'storage.conf');
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\nnetns = "none"\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
  writeFileSync(storage, `[storage]\ndriver = "vfs"\nrunroot = "${dir}/run"\ngraphroot = "${dir}/graph"\n`);
  const env = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
  return {
    env,
    async rootfs(name, extra = {}) {
      const root = path.join(dir, `rootfs-${name}`);
      mkdirSync(path.join(root, 'bin'), { recursive: true });
      copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'));
      for (const cmd of ['sh', 'ls', 'cat', 'echo', 'ln', 'mkdir', 'wc', 'tr', 'head', 'env', 'uname', 'rm', 'find', 'cut', 'basename']) symlinkSync('busybox', path.join(root, 'bin', cmd));
      for (const [p, content] of Object.entries(extra)) {
        mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
        writeFileSync(path.join(root, p), content);
        chmodSync(path.join(root, p), 0o755);
      }
      const tar = path.join(dir, `${name}.tar`);
      await execa('tar', ['-C', root, '-cf', tar, '.']);
      return tar;
    },
    async ociArchive(rootfs, tag) {
      const out = path.join(dir, `${tag.replace(/[^A-Za-z0-9]/g, '_')}.oci`);
      await execa('podman', ['import', '-q', rootfs, tag], { env });
      await execa('podman', ['save', '-q', '--format', 'oci-archive', '-o', out, tag], { env });
      return out;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
