import type { Server } from 'node:http';
import dynalite from 'dynalite';
import { listenOnLoopback } from '../listen.js';

/** DynamoDB-protocol emulator (dynalite 4, in memory, real validation and conditional checks). */
export interface DynamoDbEmulator {
  endpoint: string;
  /** Requests served, by operation (X-Amz-Target without its prefix): what the benchmark reports per user. */
  requests: Record<string, number>;
  close(): Promise<void>;
}

export async function startDynamoDbEmulator(port = 0): Promise<DynamoDbEmulator> {
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const boundPort = await listenOnLoopback(server, port);
  const requests: Record<string, number> = {};
  server.on('request', (req: { headers: Record<string, string | string[] | undefined> }) => {
    const op =
      String(req.headers['x-amz-target'] ?? 'unknown')
        .split('.')
        .pop() ?? 'unknown';
    requests[op] = (requests[op] ?? 0) + 1;
  });
  return {
    endpoint: `http://127.0.0.1:${boundPort}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
