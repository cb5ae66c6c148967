import { type ImportPlan, requiredAttributes } from '../../shared/plan.js';
import { DEFAULT_TRAY_BUDGET_PER_SECOND, workerShare } from '../../shared/tray/pacer.js';

/** The local deployment's settings: the CDK stack's defaults, scaled down so that retries take seconds. */
export const LOCAL_SETTINGS = {
  /** Long enough for a full batch at this container's share of the budget; the worker hands back what it cannot finish. */
  functionTimeoutMs: 120_000,
  /** Longer than the function timeout, as Lambda requires: an invocation in flight is never redelivered. */
  visibilityTimeoutSeconds: 150,
  maxReceiveCount: 5,
  /** The fleet's Tray budget (calls/s), as deployed by default: each concurrent invocation paces to its share. */
  trayBudgetPerSecond: DEFAULT_TRAY_BUDGET_PER_SECOND,
  /**
   * Records per invocation, gathered for up to the batching window, as Lambda's event source does.
   * Smaller than deployed (150): a local run of a few hundred users splits into more, even batches
   * over the two invocations, and each batch's users run together, so a batch loses only its
   * last round trip and the gap before the next (which the pacer's burst wins back).
   */
  batchSize: 50,
  batchingWindowMs: 500,
  /** Concurrent invocations (maxConcurrency of the event source). */
  pollers: 2,
  trayTimeoutMs: 5_000,
  enqueueTimeoutMs: 2_000,
  /** Redelivery after a transient failure: 1–2 s instead of 30 s–15 min. */
  retryBaseSeconds: 1,
  retryMaxSeconds: 2,
  signUpConcurrency: 4,
  /** The post-confirmation function's name, as cognito-local's TriggerFunctions and the Lambda stand-in know it. */
  triggerFunctionName: 'tray-auth-import-post-confirmation',
  workerFunctionName: 'tray-auth-import-worker',
  userPoolName: 'tray-auth-import-local',
  sampleIntervalMs: 250,
} as const;

/** 120 s, or half a second per user for big runs (Tray's rate limit allows about 6 users/s). */
export function defaultTimeoutSeconds(users: number): number {
  return Math.max(120, Math.ceil(users / 2));
}

/**
 * The functions' settings, as the CDK stack sets them (scaled down for a local run), on
 * process.env until the returned function puts the previous values back: both functions read
 * them at their cold start, as in Lambda.
 */
export function applyFunctionSettings(run: { plan: ImportPlan; planFile: string; trayUrl: string; verbose: boolean }): () => void {
  return applyEnv({
    MESSAGE_ATTRIBUTES: requiredAttributes(run.plan).join(','),
    ENQUEUE_TIMEOUT_MS: String(LOCAL_SETTINGS.enqueueTimeoutMs),
    IMPORT_PLAN: undefined,
    IMPORT_PLAN_FILE: run.planFile,
    TRAY_GRAPHQL_URL: run.trayUrl,
    TRAY_TIMEOUT_MS: String(LOCAL_SETTINGS.trayTimeoutMs),
    RETRY_BASE_SECONDS: String(LOCAL_SETTINGS.retryBaseSeconds),
    RETRY_MAX_SECONDS: String(LOCAL_SETTINGS.retryMaxSeconds),
    TRAY_RATE_PER_SECOND: String(workerShare(LOCAL_SETTINGS.trayBudgetPerSecond, LOCAL_SETTINGS.pollers)),
    // 0: nothing kept between invocations; each reads the master token once, as a cold one would.
    MASTER_TOKEN_CACHE_MS: '0',
    POWERTOOLS_LOG_LEVEL: run.verbose ? 'INFO' : 'SILENT',
    POWERTOOLS_METRICS_DISABLED: run.verbose ? 'false' : 'true',
  });
}

/** Sets variables (undefined deletes) and returns how to put them back. */
function applyEnv(values: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  const set = (k: string, v: string | undefined) => {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  };
  for (const [k, v] of Object.entries(values)) set(k, v);
  return () => {
    for (const [k, v] of Object.entries(previous)) set(k, v);
  };
}
