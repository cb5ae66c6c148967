import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { CliContext } from '../cli/context.js';
import { main } from '../cli/main.js';
import { EXIT } from '../cli/toolkit/errors.js';
import { bufferIo } from '../cli/toolkit/output.js';

/**
 * Exit codes tell a typo (2) from AWS refusing the credentials (4), a stack that is not there
 * (5) and AWS being unreachable (6): scripts and operators react differently to each.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const DLQ = 'http://127.0.0.1:9/000000000000/tray-auth-import-dlq';

describe('cli exit codes', () => {
  it('2 for a usage error', async () => {
    const io = bufferIo();
    expect(await main(['dlq', 'list', '--max', 'ten'], { io })).toBe(EXIT.usage);
    expect(io.stderr).toContain('must be a number');
  });

  it('4 when AWS credentials are missing, with the fix', async () => {
    const noCredentials = new SQSClient({
      region: 'us-east-1',
      credentials: async () => {
        throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
      },
    });
    const io = bufferIo();
    expect(await main(['--json', 'dlq', 'list', '--dlq-url', DLQ], { io, sqs: noCredentials })).toBe(EXIT.credentials);
    expect(io.stderr).toMatch(/CredentialsProviderError.*--profile/);
    expect(io.json()).toMatchObject({ ok: false, error: { exitCode: 4 } });
    noCredentials.destroy();
  });

  it('5 when the stack does not exist', async () => {
    const cloudformation = new CloudFormationClient({ region: 'us-east-1' });
    mockClient(cloudformation)
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id TrayAuthImport does not exist'), { name: 'ValidationError' }));
    const io = bufferIo();
    expect(await main(['dlq', 'list'], { io, cloudformation })).toBe(EXIT.notFound);
    expect(io.stderr).toContain('--dlq-url');
  });

  it('4 when reading the stack is denied, 6 when AWS cannot be reached', async () => {
    const cloudformation = new CloudFormationClient({ region: 'us-east-1' });
    const mock = mockClient(cloudformation);
    mock
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredToken' }));
    expect(await main(['dlq', 'list'], { io: bufferIo(), cloudformation })).toBe(EXIT.credentials);
    mock.reset();
    mock.on(DescribeStacksCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }));
    expect(await main(['dlq', 'list'], { io: bufferIo(), cloudformation })).toBe(EXIT.network);
  });

  it('--profile reaches the AWS clients', () => {
    const ctx = new CliContext({ profile: 'ops-readonly', region: 'eu-west-1' });
    expect((ctx.sqs.config as { profile?: string }).profile).toBe('ops-readonly');
    ctx.close();
  });

  it("spawned: --version prints the package version; a network failure exits 6 without the SDK's Node-version warning", () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'not-a-secret',
      AWS_REGION: 'us-east-1',
      AWS_MAX_ATTEMPTS: '1',
    };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const version = spawnSync('npx', ['tsx', 'cli/main.ts', '--version'], { cwd: root, encoding: 'utf8', timeout: 60_000, env });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(
      (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
    );

    // Port 9 on 127.0.0.1: nothing listens, the connection is refused at once.
    const run = spawnSync('npx', ['tsx', 'cli/main.ts', 'dlq', 'list', '--dlq-url', DLQ], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env,
    });
    expect(run.status).toBe(EXIT.network);
    expect(run.stderr).toContain('AWS could not be reached');
    expect(run.stderr).not.toContain('NodeVersionSupportWarning');
  });
});
