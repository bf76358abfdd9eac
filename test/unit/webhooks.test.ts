import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { objectPath, parseGiteaEvent, parseMinioRecords, verifyBearer, verifyGiteaSignature } from '../../daemon/sources/webhooks.js';
import { parseHookEvent } from '../../daemon/sources/spool.js';

const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;
const fixture = (name: string) => readFileSync(FIXTURES + name);
const hex = (body: Buffer, secret: string) => createHmac('sha256', secret).update(body).digest('hex');

describe('Gitea signatures', () => {
  const body = fixture('gitea/push.json');
  it('accepts each header form Gitea and Forgejo send, signed over the raw body', () => {
    for (const h of [{ 'x-gitea-signature': hex(body, 's') }, { 'x-hub-signature-256': `sha256=${hex(body, 's')}` }, { 'x-forgejo-signature': hex(body, 's') }]) {
      expect(() => verifyGiteaSignature(body, h, 's')).not.toThrow();
    }
  });
  it('refuses a missing, wrong, truncated or mixed signature with 401', () => {
    const cases = [{}, { 'x-gitea-signature': hex(body, 'other') }, { 'x-gitea-signature': hex(body, 's').slice(0, 10) }, { 'x-gitea-signature': hex(body, 's'), 'x-hub-signature-256': 'sha256=00' }];
    for (const h of cases) expect(() => verifyGiteaSignature(body, h, 's')).toThrow(expect.objectContaining({ status: 401 }));
    // The same bytes re-serialised are not the same body.
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(body.toString())));
    expect(() => verifyGiteaSignature(reserialised, { 'x-gitea-signature': hex(body, 's') }, 's')).toThrow();
  });
});

describe('Gitea events', () => {
  it('reads push, documented push and branch delete fixtures', () => {
    expect(parseGiteaEvent('push', JSON.parse(fixture('gitea/push.json').toString()))).toMatchObject({
      kind: 'push',
      repository: { full_name: 'gogits/hello-world' },
      update: { ref: 'refs/heads/master', before: '9836a96a253cce25d17988fcf41b8c4205cf779f', after: '4522cbcefc20728a5b72b3a86af35e608622c514' },
    });
    expect(parseGiteaEvent('push', JSON.parse(fixture('gitea/push-docs.json').toString()))?.update.ref).toBe('refs/heads/develop');
    expect(parseGiteaEvent('delete', JSON.parse(fixture('gitea/branch-delete.json').toString()))).toMatchObject({
      kind: 'delete',
      update: { ref: 'refs/heads/feature', after: '0000000000000000000000000000000000000000' },
    });
    expect(() => parseGiteaEvent('push', { repository: { full_name: 'a/b' }, ref: 'refs/heads/x' })).toThrow(/needs "after"/);
    expect(() => parseGiteaEvent('push', [])).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe('MinIO notifications', () => {
  it('decodes URL-query-escaped keys', () => {
    expect(parseMinioRecords(JSON.parse(fixture('minio/put.json').toString()))).toEqual([{ op: 'put', bucket: 'vd-main', key: 'Tile_+002_+002.mtl', size: 210, etag: '775ff5def9531772a2bb12853cd46fce' }]);
    expect(parseMinioRecords(JSON.parse(fixture('minio/delete.json').toString()))).toMatchObject([{ op: 'delete', key: 'Tile_+002_+002.mtl' }]);
    const spaced = { Records: [{ eventName: 's3:ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: 'a+b%2Fc%20d' } } }] };
    expect(parseMinioRecords(spaced)[0]!.key).toBe('a b/c d');
    expect(parseMinioRecords(spaced, false)[0]!.key).toBe('a+b%2Fc%20d');
  });
  it('maps keys under a prefix into the dataset and refuses everything else', () => {
    const m = [{ bucket: 'lab', prefix: 'scans/', path: 'raw/scans' }];
    expect(objectPath(m, 'lab', 'scans/sub-01/t1.nii')).toEqual({ path: 'raw/scans/sub-01/t1.nii' });
    for (const key of ['scans/../../x', 'scans/a/../../b', 'scans//etc/passwd', 'scans/', 'scans/./x', 'scans/.git/config'])
      expect(objectPath(m, 'lab', key)).toHaveProperty('refused');
    expect(objectPath(m, 'lab', 'other/x')).toEqual({ refused: 's3://lab/other/x is outside every configured bucket/prefix' });
    expect(objectPath(m, 'elsewhere', 'scans/x')).toHaveProperty('refused');
  });
  it('checks the bearer token', () => {
    expect(() => verifyBearer('Bearer t0k', 't0k')).not.toThrow();
    for (const h of [undefined, 'Basic t0k', 'Bearer t0K', 'Bearer']) expect(() => verifyBearer(h, 't0k')).toThrow(expect.objectContaining({ status: 401 }));
  });
});

describe('the git hook spool format', () => {
  it('reads the hook name, the repository and the ref updates', () => {
    const ev = parseHookEvent(`post-receive\n/srv/repo.git\n${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/main\n${'0'.repeat(40)} ${'c'.repeat(40)} refs/heads/new\n`);
    expect(ev).toEqual({ kind: 'git', repo: '/srv/repo.git', annex: false, updates: [{ ref: 'refs/heads/main', before: 'a'.repeat(40), after: 'b'.repeat(40) }, { ref: 'refs/heads/new', before: '0'.repeat(40), after: 'c'.repeat(40) }] });
    expect(parseHookEvent('post-update-annex\n/srv/repo.git\n\n')).toMatchObject({ annex: true, updates: [] });
  });
});
