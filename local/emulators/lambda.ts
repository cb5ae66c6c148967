import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../listen.js';

/**
 * A small Lambda stand-in: Lambda's `Invoke` (RequestResponse) on 127.0.0.1, calling in-process
 * handlers. No npm package emulates Lambda without Docker, and cognito-local only needs this one
 * call to run triggers: `POST /2015-03-31/functions/{name}/invocations`, the event as the JSON
 * body, the handler's result as the JSON answer. A handler that throws is answered as Lambda
 * does: status 200 with `X-Amz-Function-Error: Unhandled` and `{ errorType, errorMessage }`.
 */
export type LambdaFunction = (event: unknown) => Promise<unknown>;

export interface LambdaStandIn {
  endpoint: string;
  /** Invocations per function name (those that threw included). */
  invocations: Record<string, number>;
  close(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** An API error as Lambda answers it (the SDK reads the type from this header). */
function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  sendJson(res, status, { Type: 'User', message }, { 'x-amzn-errortype': type });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startLambdaStandIn(functions: Record<string, LambdaFunction>, port = 0): Promise<LambdaStandIn> {
  const invocations: Record<string, number> = Object.fromEntries(Object.keys(functions).map((name) => [name, 0]));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const match = INVOKE_PATH.exec(path);
    if (req.method !== 'POST' || !match?.[1])
      return sendError(res, 404, 'UnknownOperationException', `only Invoke is implemented, not ${req.method} ${path}`);
    // A name, a name:qualifier or an ARN ending in either.
    const name = decodeURIComponent(match[1]).split(':function:').at(-1)?.split(':')[0] ?? '';
    const fn = functions[name];
    if (!fn) return sendError(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
    const invocationType = req.headers['x-amz-invocation-type'] ?? 'RequestResponse';
    if (invocationType !== 'RequestResponse')
      return sendError(
        res,
        400,
        'InvalidParameterValueException',
        `only RequestResponse invocations are implemented, not ${String(invocationType)}`,
      );

    const raw = await readBody(req);
    let event: unknown;
    try {
      event = raw === '' ? {} : JSON.parse(raw);
    } catch {
      return sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
    }
    invocations[name] = (invocations[name] ?? 0) + 1;
    try {
      const result = await fn(event);
      sendJson(res, 200, result ?? null, { 'x-amz-executed-version': '$LATEST' });
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      sendJson(
        res,
        200,
        { errorType: error.name, errorMessage: error.message },
        { 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' },
      );
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'ServiceException', (e as Error).message);
      else res.destroy();
    });
  });
  const bound = await listenOnLoopback(server, port);
  return {
    endpoint: `http://127.0.0.1:${bound}`,
    invocations,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
