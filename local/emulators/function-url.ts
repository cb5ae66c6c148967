import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { lambdaContext } from '../lambda-context.js';
import { listenOnLoopback } from '../listen.js';

/**
 * A Lambda function URL on 127.0.0.1: each HTTP request becomes the payload (version 2.0) Lambda
 * gives a function behind its URL, and the function's result becomes the HTTP answer, as Lambda
 * does it (a result without `statusCode` is sent as a JSON 200; a function that throws is a 502).
 * Bodies that are not text are base64-encoded, as Lambda encodes them. Logs nothing: a URL may
 * carry a token.
 */
export type FunctionUrlHandler = (event: LambdaFunctionURLEvent, context: Context) => Promise<LambdaFunctionURLResult>;

export interface FunctionUrlStandIn {
  /** Ends with "/", like a function URL. */
  url: string;
  invocations: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 6 * 1024 * 1024;
const TEXT = /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript)|[^;]*\+(json|xml))/i;

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function toFunctionUrlEvent(req: IncomingMessage, body: Buffer, host: string): LambdaFunctionURLEvent {
  const url = new URL(req.url ?? '/', `http://${host}`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && name !== 'cookie') headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  // Lambda joins repeated parameters with commas.
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const isText = body.length === 0 || TEXT.test(headers['content-type'] ?? '');
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    cookies: req.headers.cookie?.split(/;\s*/),
    headers,
    queryStringParameters: Object.keys(query).length > 0 ? query : undefined,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: host,
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: body.length === 0 ? undefined : isText ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: !isText,
  };
}

function send(res: ServerResponse, result: LambdaFunctionURLResult): void {
  if (typeof result !== 'object' || result === null || !('statusCode' in result)) {
    // Lambda's inference: anything else is the JSON body of a 200.
    const body = typeof result === 'string' ? result : JSON.stringify(result);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    return;
  }
  const headers: Record<string, string | string[]> = { ...(result.headers as Record<string, string>) };
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body = result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  res.writeHead(result.statusCode ?? 200, headers).end(body);
}

export async function startFunctionUrl(
  handler: FunctionUrlHandler,
  options: { port?: number | undefined; functionName?: string; timeoutMs?: number } = {},
): Promise<FunctionUrlStandIn> {
  const functionName = options.functionName ?? 'function-url';
  let invocations = 0;
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (body === undefined) return void res.writeHead(413, { 'content-type': 'application/json' }).end('{"message":"Request Too Long"}');
      invocations += 1;
      const host = req.headers.host ?? '127.0.0.1';
      try {
        send(res, await handler(toFunctionUrlEvent(req, body, host), lambdaContext(functionName, options.timeoutMs ?? 10_000)));
      } catch {
        // Lambda answers an unhandled error without its detail.
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"Internal Server Error"}');
        else res.destroy();
      }
    })();
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  return {
    url: `http://127.0.0.1:${port}/`,
    get invocations() {
      return invocations;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
