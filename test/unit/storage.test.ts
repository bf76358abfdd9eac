import { describe, expect, it } from 'vitest';
import { isPrivateAddress, keySize, objectName, parseCredentialsFile, parseRemoteLog, storageProblem } from '../../daemon/core/storage.js';

describe('storage, the pure part', () => {
  it('reads S3 remotes from remote.log as git-annex writes it (the latest line of a uuid wins)', () => {
    const log = [
      'bbbf85fa-5335-466a-81fb-fe3941cfb0aa autoenable=true bucket=annex datacenter=US encryption=none host=127.0.0.1 name=s3 port=9555 protocol=http requeststyle=path signature=v4 storageclass=STANDARD type=S3 timestamp=1796568436.134746409s',
      '11111111-2222-4333-8444-555555555555 name=web type=web timestamp=1s',
      'cccccccc-5335-466a-81fb-fe3941cfb0aa bucket=old datacenter=eu-west-1 fileprefix=lab/ name=aws type=S3 timestamp=1s',
      'cccccccc-5335-466a-81fb-fe3941cfb0aa bucket=new datacenter=eu-west-1 fileprefix=lab/ name=aws type=S3 timestamp=2s',
    ].join('\n');
    const [s3, aws] = parseRemoteLog(log);
    expect(s3).toEqual({ uuid: 'bbbf85fa-5335-466a-81fb-fe3941cfb0aa', name: 's3', bucket: 'annex', host: '127.0.0.1', port: 9555, protocol: 'http', pathStyle: true, filePrefix: '', region: 'us-east-1' });
    expect(aws).toMatchObject({ name: 'aws', bucket: 'new', host: 's3.amazonaws.com', protocol: 'https', pathStyle: false, region: 'eu-west-1' });
    expect(objectName(aws!, 'MD5E-s3--abc.txt')).toBe('lab/MD5E-s3--abc.txt');
    expect(parseRemoteLog('')).toEqual([]);
  });

  it('knows a key\'s size when it records one', () => {
    expect(keySize('MD5E-s11--e1c6a3e7d06f33bee1cc3c67e96c8a5b.txt')).toBe(11);
    expect(keySize('URL--http&c%%example.com')).toBeUndefined();
  });

  it('reads credentials files and names the file and line of a bad one, never the secret', () => {
    expect(parseCredentialsFile('# MinIO\nAWS_ACCESS_KEY_ID=lab\nexport AWS_SECRET_ACCESS_KEY="s3cr3t"\n', 'f')).toEqual({ accessKey: 'lab', secretKey: 's3cr3t' });
    expect(() => parseCredentialsFile('AWS_ACCESS_KEY_ID=lab\n', 'creds.env')).toThrow('creds.env: AWS_SECRET_ACCESS_KEY missing');
    expect(() => parseCredentialsFile('AWS_ACCESS_KEY_ID=lab\nsecret s3cr3t\n', 'creds.env')).toThrow(/^creds\.env:2: not a NAME=value line/);
    try {
      parseCredentialsFile('AWS_ACCESS_KEY_ID=lab\nsecret s3cr3t\n', 'creds.env');
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cr3t');
    }
  });

  it('says what an S3 failure means: wait for an outage or a full bucket, fail on credentials or a denial', () => {
    const cases: [string | undefined, string, string, boolean][] = [
      ['ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9000', 'unreachable', true],
      [undefined, 'ConnectionFailure Network.Socket.connect: does not exist (Connection refused)', 'unreachable', true],
      ['InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist', 'credentials', false],
      [undefined, 'Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to use S3', 'credentials', false],
      ['XMinioStorageFull', 'Storage backend has reached its minimum free drive threshold', 'full', true],
      ['AccessDenied', 'Access Denied.', 'denied', false],
      ['NoSuchBucket', '', 'no-bucket', false],
    ];
    for (const [code, message, problem, transient] of cases) {
      const e = storageProblem('s3', code, message);
      expect([e.problem, e.transient], `${code} ${message}`).toEqual([problem, transient]);
      expect(e.message).toMatch(/^storage "s3": /);
    }
  });

  it('knows the addresses git-annex refuses unless allowed', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.18.0.5', '192.168.1.9', '::1', 'fd00::1', '::ffff:127.0.0.1']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '172.32.0.1', '2001:db8::1']) expect(isPrivateAddress(a), a).toBe(false);
  });
});
