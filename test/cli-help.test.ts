import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../cli/main.js';
import { bufferIo } from '../cli/toolkit/output.js';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('cli --help', () => {
  it('lists every command (spawned as an operator runs it)', () => {
    const run = spawnSync('npx', ['tsx', 'cli/main.ts', '--help'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    expect(run.status).toBe(0);
    for (const command of [
      'preflight',
      'dlq list',
      'dlq export',
      'dlq delete',
      'redrive',
      'redrive status',
      'redrive cancel',
      'backfill',
      'reconcile',
      'status',
      'attach-trigger',
      'detach-trigger',
      'import-user',
    ]) {
      expect(run.stdout).toContain(command);
    }
    expect(run.stdout).toContain('--json');
    expect(run.stdout).toContain('--stack-name');
  });

  it('exits 2 on usage errors and refuses a token given as a flag value without echoing it', async () => {
    const io = bufferIo();
    expect(await main(['redrive', '--nope'], { io })).toBe(2);
    expect(io.stderr).toContain("unknown option '--nope'");

    const token = 'super-secret-token-value';
    const io2 = bufferIo();
    expect(await main(['preflight', '--plan', 'x.json', '--master-token', token], { io: io2 })).toBe(2);
    expect(io2.stderr).toContain('--master-token is not accepted');
    expect(io2.stderr + io2.stdout).not.toContain(token);

    const io3 = bufferIo();
    expect(await main(['status'], { io: io3 })).toBe(2);
    expect(io3.stderr).toContain("missing required argument 'sub'");
  });

  it("shows each command's options", async () => {
    const io = bufferIo();
    expect(await main(['backfill', '--help'], { io })).toBe(0);
    for (const flag of [
      '--user-pool-id',
      '--plan',
      '--attributes',
      '--filter',
      '--rate',
      '--state',
      '--restart',
      '--dry-run',
      '--queue-url',
      '--table',
    ])
      expect(io.stdout).toContain(flag);

    const reconcile = bufferIo();
    expect(await main(['reconcile', '--help'], { io: reconcile })).toBe(0);
    for (const flag of ['--include-failed', '--older-than', '--plan', '--dry-run']) expect(reconcile.stdout).toContain(flag);
    expect(reconcile.stdout).toContain('(default: 30)');
  });
});
