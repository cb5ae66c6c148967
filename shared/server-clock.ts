import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * DynamoDB's clock, as seen from here: every response's `Date` header says what time the
 * service thinks it is, and the offset to this machine's clock is kept. Leases are written and
 * compared by several machines (Lambda, an operator's laptop running `import-user`); deciding
 * them against one clock — DynamoDB's — means a host whose clock is minutes off can neither
 * steal a live lease nor hold one past its time. The header has a one-second resolution, so
 * callers keep a margin of a couple of seconds.
 */
let attached = 0;

export class ServerClock {
  private offset = 0;
  private measured = false;

  constructor(private readonly local: () => number = Date.now) {}

  /** Epoch ms on the server's clock (this machine's until the first answer came). */
  now(): number {
    return this.local() + this.offset;
  }

  /** How far this machine's clock is behind (positive) or ahead (negative) of the server's, in ms. */
  get offsetMs(): number {
    return this.offset;
  }

  get isMeasured(): boolean {
    return this.measured;
  }

  /** One answer: the server stamped `date` somewhere between `sentAt` and `receivedAt` (local times). */
  observe(date: string | undefined, sentAt: number, receivedAt: number): void {
    const server = date === undefined ? Number.NaN : Date.parse(date);
    if (!Number.isFinite(server)) return;
    // The header is truncated to the second: its midpoint is the best estimate.
    this.offset = Math.round(server + 500 - (sentAt + receivedAt) / 2);
    this.measured = true;
  }

  /** Reads the Date header of every answer the client gets. */
  attach(client: DynamoDBClient): void {
    // One middleware per clock: several ledgers may share a client, each keeping its own clock.
    const name = `trayAuthImportServerClock${++attached}`;
    const stack = client.middlewareStack as unknown as { add(mw: unknown, options: unknown): void };
    stack.add(
      (next: (args: unknown) => Promise<{ response: unknown }>) => async (args: unknown) => {
        const sentAt = this.local();
        const out = await next(args);
        const headers = (out.response as { headers?: Record<string, string> } | undefined)?.headers;
        this.observe(headers?.date ?? headers?.Date, sentAt, this.local());
        return out;
      },
      { step: 'deserialize', name },
    );
  }
}
