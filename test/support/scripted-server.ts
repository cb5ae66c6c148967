import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on 127.0.0.1 that answers from a script, for the client's edge cases. */
export interface ScriptedAnswer {
  /** 0: never answer (a hang). */
  status: number;
  body: unknown;
}

export interface ScriptedServer {
  url: string;
  requests: { operationName: string | undefined; authorization: string | undefined; variables: Record<string, unknown> | undefined }[];
  close(): Promise<void>;
}

export async function startScriptedServer(answers: ScriptedAnswer[]): Promise<ScriptedServer> {
  const requests: ScriptedServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { operationName?: string; variables?: Record<string, unknown> };
      requests.push({ operationName: payload.operationName, authorization: req.headers.authorization, variables: payload.variables });
      const answer = answers.shift() ?? { status: 500, body: { errors: [{ message: 'script exhausted' }] } };
      if (answer.status === 0) return;
      res.writeHead(answer.status, { 'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json' });
      res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
