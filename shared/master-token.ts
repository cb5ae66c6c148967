import secretsManager from '@middy/secrets-manager';
import { clearCache, getInternal } from '@middy/util';
import type middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { classifyAwsFailure } from './aws-errors.js';
import { masterTokenFromSecret } from './master-token-secret.js';
import type { MasterTokenSource } from './tray/client.js';

/**
 * The Tray master token, read by `@middy/secrets-manager` (cached; re-read when an invocation
 * starts more than `cacheExpiryMs` after the last read, so a rotated token is picked up) and
 * exposed to the handler as a MasterTokenSource whose `refresh()` clears middy's cache and re-runs the same middleware — the one way to refetch
 * inside an invocation after Tray answers 401. `clearCache` comes from the same `@middy/util`
 * copy the middleware uses (one middy major installed), otherwise it would silently do nothing.
 */
export const MASTER_TOKEN_CACHE_KEY = 'tray-master-token';

export interface MasterTokenContext extends Context {
  masterToken: MasterTokenSource;
}

export function masterTokenMiddleware(options: { secretId: string; cacheExpiryMs: number }): middy.MiddlewareObj<unknown, unknown, Error, MasterTokenContext> {
  const fetcher = secretsManager({
    fetchData: { masterToken: options.secretId },
    cacheKey: MASTER_TOKEN_CACHE_KEY,
    // Cached without a refresh timer: with a positive expiry middy re-reads the secret in the
    // background on a timer, and a failed background read is an unhandled rejection that
    // crashes the runtime. Expiry is applied below instead, when an invocation starts.
    cacheExpiry: -1,
    // Prefetching at import time would read the secret before the handler's configuration is
    // validated (and in tests before the stand-in is up); the first invocation reads it instead.
    disablePrefetch: true,
  });

  // middy stores the fetch as a promise that only `get()` reads: if no record gets that far, a
  // failed fetch would become an unhandled rejection and fail the whole invocation.
  const fetchInto = async (request: unknown) => {
    await fetcher.before!(request as never);
    const pending = (request as { internal: Record<string, unknown> }).internal.masterToken;
    if (pending instanceof Promise) pending.catch(() => undefined);
  };

  let fetchedAt = Number.NEGATIVE_INFINITY;
  /** The next fetchInto reads the secret again. */
  const forget = () => {
    clearCache([MASTER_TOKEN_CACHE_KEY]);
    fetchedAt = Date.now();
  };

  return {
    before: async (request) => {
      // A rotated token is picked up at most cacheExpiryMs after rotation (0: every invocation).
      if (Date.now() - fetchedAt >= options.cacheExpiryMs) forget();
      await fetchInto(request);
      const read = async () => {
        try {
          const { masterToken } = await getInternal(['masterToken'], request as never);
          return masterTokenFromSecret(masterToken, options.secretId);
        } catch (e) {
          // Throttling and 5xx are worth a retry; a missing secret or denied access needs a human.
          throw classifyAwsFailure(e, 'secrets', `reading the master token secret "${options.secretId}"`, 'SECRET_UNREADABLE');
        }
      };
      let inflight: Promise<string> | undefined;
      request.context.masterToken = {
        get: read,
        // Several records of one batch may see the 401 together: one refetch serves them all.
        refresh: () =>
          (inflight ??= (async () => {
            forget();
            await fetchInto(request);
            return read();
          })().finally(() => setTimeout(() => (inflight = undefined), 0))),
      };
    },
  };
}
