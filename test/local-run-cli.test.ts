import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** `npm start` as an evaluator runs it on a fresh clone, in CI (no TTY). */
const root = fileURLToPath(new URL('..', import.meta.url));

function npmStart(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
  delete env.TRAY_MASTER_TOKEN;
  delete env.IMPORT_PLAN;
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['start', '--', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('npm start (child process, no TTY)', () => {
  it("signs up 3 users, prints the table and the broken user's DLQ reason, and exits 0", async () => {
    const run = await npmStart(['--users', '3']);

    expect(run.stderr).not.toMatch(/failed|Error:/);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^user\s+Tray user id\s+auth id\s+instance id\s+enabled$/m);
    expect(run.stdout.match(/^user00[123]\s+user-\S+\s+auth-\S+\s+inst-\S+\s+yes$/gm)).toHaveLength(3);
    expect(run.stdout).toContain('Dead-letter queue: 1 message');
    expect(run.stdout).toContain('ErrorCode:   MISSING_ATTRIBUTE (permanent), ErrorStep: plan');
    expect(run.stdout).toContain('ErrorReason: user broken-user lacks attribute "custom:tenant_id" that the plan needs');
    expect(run.stdout).toMatch(/^OK: 3 of 3 users enabled/m);
    // No TTY: plain progress lines, no bar escape codes, no worker JSON logs.
    expect(run.stdout).toMatch(/^progress \d+\.\ds: signed up/m);
    expect(run.stdout + run.stderr).not.toContain('\u001b[');
    expect(run.stdout).not.toMatch(/^\{"level"/m);
    console.info(`npm start -- --users 3: ${(run.ms / 1000).toFixed(1)}s`);
  }, 90_000);

  it("exits 2 with the plan's error for an invalid --plan", async () => {
    const run = await npmStart(['--plan', 'does-not-exist.json']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/error: cannot read the import plan at .*does-not-exist\.json/);
  }, 60_000);
});
