import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { runLocalPipeline } from '../local/runner/pipeline.js';
import type { RunOutput } from '../local/runner/types.js';

/**
 * `npm start -- --serve` exposes Tray's expired-auth webhook: on base port + 4, its token in the
 * Secrets Manager stand-in, and the Tray stand-in's notify-expiring route reaches it. The help
 * prints both commands. Alone in its file: the run sets the AWS endpoints on process.env.
 */
describe('npm start --serve: the Tray webhook', () => {
  it('serves the webhook; the stand-in notifies it about an imported auth; the help says how', async () => {
    const basePort = 20_000 + Math.floor(Math.random() * 40_000);
    const lines: string[] = [];
    const out: RunOutput = { log: (l) => void lines.push(l), warn: () => undefined, tty: undefined };
    const result = await runLocalPipeline({ users: 1, brokenUser: false, faultRate: 0, serve: true, basePort, trayLatencyMs: 0 }, out);
    try {
      expect(result.ok).toBe(true);
      const webhook = result.serve?.webhook;
      expect(webhook?.url).toBe(`http://127.0.0.1:${basePort + 4}/`);
      expect(webhook?.exampleAuthId).toMatch(/^auth-/);
      const help = lines.join('\n');
      expect(help).toContain(`Tray webhook     http://127.0.0.1:${basePort + 4}/`);
      expect(help).toContain(`secretsmanager get-secret-value --secret-id ${webhook?.tokenSecretName}`);
      expect(help).toContain(`curl -s -X POST http://127.0.0.1:${basePort + 3}/_standin/notify-expiring`);

      // What the help's commands do: read the token, have the stand-in notify the webhook.
      const sm = new SecretsManagerClient({
        endpoint: result.serve?.secretsManager,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      const token = (await sm.send(new GetSecretValueCommand({ SecretId: webhook?.tokenSecretName }))).SecretString ?? '';
      sm.destroy();
      expect(help).not.toContain(token);
      const answer = (await fetch(`http://127.0.0.1:${basePort + 3}/_standin/notify-expiring`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ authId: webhook?.exampleAuthId, url: `${webhook?.url}?token=${token}` }),
      }).then((r) => r.json())) as { webhook: { status: number; body: unknown } };
      // The demo secret was seeded before the import: no newer value, so the company is alerted.
      expect(answer.webhook).toEqual({ status: 200, body: { action: 'alert' } });
    } finally {
      await result.stop?.();
    }
    await expect(fetch(`http://127.0.0.1:${basePort + 4}/`, { method: 'POST' })).rejects.toThrow();
  }, 60_000);
});
