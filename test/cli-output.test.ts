import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Pacer, sendBatch } from '../cli/enqueue.js';
import { bufferIo, emit, table } from '../cli/toolkit/output.js';
import { progress } from '../cli/toolkit/progress.js';
import { registerSecret, resetSecretsForTests } from '../shared/redact.js';

describe('cli output', () => {
  it('draws progress on stderr only when it is a terminal', () => {
    const quiet = bufferIo();
    const silent = progress(quiet, 'backfilling', 10);
    silent.increment(5);
    silent.stop();
    expect(quiet.stderr).toBe('');

    const stream = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 120,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    });
    let drawn = '';
    stream.on('data', (c: Buffer) => (drawn += c.toString()));
    const tty = { ...bufferIo(), stderrIsTTY: true, progressStream: stream };
    const bar = progress(tty, 'backfilling', 10);
    bar.increment(4);
    bar.increment(20); // an estimate can be exceeded without breaking the bar
    bar.stop();
    expect(drawn).toContain('backfilling');
    expect(drawn).toContain('24/24');
    expect(tty.stdout).toBe('');
  });

  it('prints one JSON document with --json, a table otherwise, scrubbing registered secrets', () => {
    resetSecretsForTests();
    registerSecret('s3cr3t-value-123');
    const json = bufferIo();
    emit(json, true, { a: 1, note: 'token s3cr3t-value-123' }, () => 'unused');
    expect(json.json()).toEqual({ ok: true, a: 1, note: 'token [redacted]' });
    const failed = bufferIo();
    emit(failed, true, { found: false }, () => 'unused', false);
    expect(failed.json()).toEqual({ ok: false, found: false });

    const text = bufferIo();
    emit(text, false, {}, () =>
      table(
        [
          { sub: 'a', n: 1 },
          { sub: 'bbbb', n: undefined },
        ],
        [
          ['sub', (r) => r.sub],
          ['n', (r) => r.n],
        ],
      ),
    );
    expect(text.stdout).toBe('sub   n\na     1\nbbbb  -\n');
    resetSecretsForTests();
  });

  it('paces sends to the given rate', async () => {
    let now = 0;
    const waits: number[] = [];
    const pacer = new Pacer(
      20,
      () => now,
      async (ms) => {
        waits.push(ms);
        now += ms;
      },
    );
    for (let i = 0; i < 3; i++) await pacer.take(10); // 10 users at 20/s: half a second each batch
    expect(waits).toEqual([500, 500]);
  });

  it("does not retry entries SQS rejects as the sender's fault", async () => {
    const sqs = {
      send: async () => ({
        Successful: [{ Id: 'm0' }],
        Failed: [{ Id: 'm1', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad' }],
      }),
    };
    const message = (sub: string) => ({
      v: 1 as const,
      userPoolId: 'us-east-1_P',
      username: sub,
      sub,
      attributes: {},
      source: 'backfill' as const,
      requestedAt: new Date().toISOString(),
    });
    let calls = 0;
    const counting = { send: async () => (calls++, sqs.send()) };
    const out = await sendBatch(counting as never, 'http://q', [message('a'), message('b')], { sleep: async () => undefined });
    expect(calls).toBe(1);
    expect(out.sent.map((m) => m.sub)).toEqual(['a']);
    expect(out.failed).toEqual([{ sub: 'b', username: 'b', reason: 'InvalidMessageContents: bad' }]);
  });
});
