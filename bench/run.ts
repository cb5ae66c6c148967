/**
 * Benchmarks, run with `npm run bench` (prints Markdown) or `npm run bench -- --write`
 * (replaces BENCHMARKS.md). Measures, on this machine:
 *  - throughput of the whole local pipeline (`npm start`'s code: real trigger, real worker per
 *    concurrent invocation, emulators) against the Tray stand-in with Tray's rate limit (30/s,
 *    burst 50) at 100, 300 and 800 ms per call, 600 users each: users/s, Tray requests/s, the
 *    ratio to the budget and to Tray's ceiling, rate-limit answers, users dead-lettered;
 *  - the worker's own cost per user against a zero-latency Tray: CPU, DynamoDB requests,
 *    Secrets Manager reads per invocation; memory;
 *  - the worker's cold start (module import + handler construction);
 *  - the size of each Lambda bundle, built with esbuild as the stack builds it.
 * `BENCH_USERS` and `BENCH_LATENCIES` (e.g. "800") shorten a run while tuning.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { type BuildOptions, build } from 'esbuild';
import { ENTRIES } from '../functions/entries.js';
import { ESM_REQUIRE_BANNER, LAMBDA_NODE_MAJOR, RUNTIME_SOURCE_MAPS } from '../infra/constructs/lambda-function.js';
import { runLocalPipeline } from '../local/runner/pipeline.js';
import { LOCAL_SETTINGS } from '../local/runner/settings.js';
import type { LocalRunResult } from '../local/runner/types.js';
import { TRAY_RATE_LIMIT_PER_SECOND, workerShare } from '../shared/tray/pacer.js';
import { nodeBinary } from './lambda-node.js';

const USERS = Number(process.env.BENCH_USERS ?? 600);
const LATENCIES = (process.env.BENCH_LATENCIES ?? '100,300,800').split(',').map(Number);
const AUTHS = 1;
const silent = { log: () => undefined, warn: (line: string) => process.stderr.write(`${line}\n`), tty: undefined };

interface PipelineRun {
  latencyMs: number;
  result: LocalRunResult;
  peakRssMb: number;
}

/** One `npm start` run: USERS users, no injected faults, the stand-in's rate limit on. */
async function pipeline(latencyMs: number): Promise<PipelineRun> {
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  process.stderr.write(`bench: ${USERS} users at ${latencyMs} ms per Tray call...\n`);
  const result = await runLocalPipeline(
    { users: USERS, faultRate: 0, brokenUser: false, trayLatencyMs: latencyMs, timeoutSeconds: 1_800 },
    silent,
  );
  clearInterval(sampler);
  if (!result.ok)
    throw new Error(
      `the run at ${latencyMs} ms did not end as expected: ${[...result.problems, ...result.users.flatMap((u) => u.problems)].slice(0, 5).join('; ')}`,
    );
  return { latencyMs, result, peakRssMb: peakRss / 2 ** 20 };
}

/** The stack's esbuild settings (infra/constructs/lambda-function.ts). */
const ENTRY_OF = { 'import-worker': ENTRIES.importWorker, 'post-confirmation': ENTRIES.postConfirmation } as const;
const bundleOptions = (name: keyof typeof ENTRY_OF): BuildOptions => ({
  entryPoints: [new URL(`../${ENTRY_OF[name]}`, import.meta.url).pathname],
  bundle: true,
  minify: true,
  platform: 'node',
  target: `node${LAMBDA_NODE_MAJOR}`,
  format: 'esm',
  mainFields: ['module', 'main'],
  banner: { js: ESM_REQUIRE_BANNER },
  logLevel: 'silent',
});

/** The Lambda runtime's Node and this machine's, when they differ: init time is measured under both. */
const NODES = [process.versions.node.split('.')[0], String(LAMBDA_NODE_MAJOR)].filter((m, i, all) => all.indexOf(m) === i).map(Number);
const COLD_START_RUNS = 9;
/** The decision the cold-start table informs (issue 12); the reasoning is at RUNTIME_SOURCE_MAPS. */
const SOURCE_MAPS_NOTE = RUNTIME_SOURCE_MAPS
  ? `kept on (\`NODE_OPTIONS=--enable-source-maps\`; the reasoning is at RUNTIME_SOURCE_MAPS in infra/constructs/lambda-function.ts): they serve the stack traces Lambda reports for an error escaping a handler or the init. Node ${LAMBDA_NODE_MAJOR}, Lambda's runtime, does not read a bundle's map during the import (strace), so its rows differ by noise only; it decodes the map when a stack trace is first formatted, about 0.25 s of CPU once per container for the worker's, on those failure paths only. Node 20 reads and parses the map during the import: the cost in its rows.`
  : `off in the stack (infra/constructs/lambda-function.ts): the maps are shipped beside the bundles for resolving stack traces offline.`;

interface ColdStart {
  fn: 'import-worker' | 'post-confirmation';
  node: string;
  /** Median ms of module init, without and with `--enable-source-maps`. */
  ms: number;
  msWithSourceMaps: number;
}

/**
 * Module initialisation of each bundle in a fresh Node process, as Lambda's init phase runs it
 * (the worker: config validation, clients, middy chain; the trigger: its SQS client): the median
 * of several runs, under this machine's Node and the Lambda runtime's major (bench/lambda-node.ts),
 * each without and with `--enable-source-maps` (the runtime source-map decision in
 * infra/constructs/lambda-function.ts rests on that difference). Runs are interleaved so that
 * load from elsewhere on the machine spreads over all variants alike.
 */
async function coldStarts(): Promise<{ results: ColdStart[]; skipped: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cold-'));
  const skipped: string[] = [];
  const binaries = NODES.flatMap((major) => {
    const found = nodeBinary(major);
    if ('unavailable' in found) skipped.push(`Node ${major}: ${found.unavailable}`);
    return 'path' in found ? [found] : [];
  });
  const settings: Record<ColdStart['fn'], Record<string, string>> = {
    'import-worker': {
      LEDGER_TABLE: 'bench',
      QUEUE_URL: 'http://127.0.0.1:1/000000000000/q',
      DLQ_URL: 'http://127.0.0.1:1/000000000000/dlq',
      MASTER_TOKEN_SECRET_ID: 'bench',
      IMPORT_PLAN_FILE: new URL('../local/demo-plan.json', import.meta.url).pathname,
    },
    'post-confirmation': { QUEUE_URL: 'http://127.0.0.1:1/000000000000/q', MESSAGE_ATTRIBUTES: 'email,name' },
  };
  try {
    const results: ColdStart[] = [];
    for (const fn of ['import-worker', 'post-confirmation'] as const) {
      const out = join(dir, fn);
      // Source maps as the stack emits them (mappings only), so that the flag has a map to load.
      await build({ ...bundleOptions(fn), sourcemap: true, sourcesContent: false, outfile: join(out, 'index.mjs') });
      const driver = join(out, 'driver.mjs');
      writeFileSync(driver, `const t = performance.now(); await import('./index.mjs'); console.log(performance.now() - t);`);
      const variants = binaries.flatMap((b) => [false, true].map((sourceMaps) => ({ ...b, sourceMaps, runs: [] as number[] })));
      for (let i = 0; i < COLD_START_RUNS; i++) {
        for (const v of variants) {
          const env = {
            PATH: process.env.PATH,
            AWS_REGION: 'us-east-1',
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
            ...settings[fn],
            ...(v.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
          };
          v.runs.push(Number(execFileSync(v.path, [driver], { env, cwd: out }).toString().trim()));
        }
      }
      const median = (runs: number[]) => runs.sort((a, b) => a - b)[runs.length >> 1]!;
      for (const b of binaries) {
        const [plain, mapped] = variants.filter((v) => v.path === b.path);
        results.push({ fn, node: b.version, ms: median(plain!.runs), msWithSourceMaps: median(mapped!.runs) });
      }
    }
    return { results, skipped };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bundleSizes() {
  const sizes: Record<string, { kb: number; packages: string[] }> = {};
  for (const name of ['import-worker', 'post-confirmation'] as const) {
    const result = await build({ ...bundleOptions(name), write: false, metafile: true });
    const packages = new Set<string>();
    for (const input of Object.keys(result.metafile.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      if (match)
        packages.add(
          match[1]!.startsWith('@smithy') || match[1]!.startsWith('@aws-sdk') || match[1]!.startsWith('@aws-crypto')
            ? match[1]!.split('/')[0]!
            : match[1]!,
        );
    }
    sizes[name] = { kb: result.outputFiles[0]!.contents.byteLength / 1024, packages: [...packages].sort() };
  }
  return sizes;
}

const cold = await coldStarts();
const runs: PipelineRun[] = [];
for (const latency of LATENCIES) runs.push(await pipeline(latency));
const cost = await pipeline(0);
const bundles = await bundleSizes();
const fmt = (n: number, d = 1) => n.toFixed(d);
const budget = LOCAL_SETTINGS.trayBudgetPerSecond;
const ceilingUsers = TRAY_RATE_LIMIT_PER_SECOND / (4 + AUTHS);
const row = ({ latencyMs, result }: PipelineRun) => {
  const t = result.counts.throughput!;
  const calls = (t.trayRequestsPerSecond ?? 0) * t.seconds;
  return `| ${latencyMs} ms | ${result.counts.enabled} | ${fmt(t.seconds)} s | ${fmt(t.usersPerSecond, 2)} | ${fmt(t.trayRequestsPerSecond ?? 0)} | ${fmt((t.trayRequestsPerSecond ?? 0) / budget, 2)} | ${fmt(t.usersPerSecond / ceilingUsers, 2)} | ${t.rateLimited ?? 0} (${fmt((100 * (t.rateLimited ?? 0)) / Math.max(1, calls), 2)}%) | ${result.counts.deadLettered} |`;
};
const aws = cost.result.counts.aws!;
const dynamo = Object.entries(aws.dynamodbRequests).filter(([op]) => op !== 'CreateTable' && op !== 'Query' && op !== 'Scan');
const dynamoTotal = dynamo.reduce((sum, [, n]) => sum + n, 0);
const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${fmt(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}.

## Throughput against Tray's rate limit, at three latencies

The whole local pipeline (\`npm start\`'s code: the real trigger, one real worker instance per
concurrent invocation, the event-source poller with Lambda's batching, the SQS and DynamoDB
emulators) against the Tray stand-in with Tray's rate limit (30 requests/s, bursts to 50), its
2 s wait before enabling, and a fixed latency per call. No injected faults; ${USERS} users with
${AUTHS} auth each (${4 + AUTHS} Tray calls per user). The fleet's budget is ${budget} requests/s:
${LOCAL_SETTINGS.pollers} concurrent invocations × ${fmt(workerShare(budget, LOCAL_SETTINGS.pollers), 1)}/s each, after the CLI's reserve.
Batches of up to ${LOCAL_SETTINGS.batchSize} records, ${LOCAL_SETTINGS.batchingWindowMs} ms batching window, ${LOCAL_SETTINGS.functionTimeoutMs / 1000} s function timeout.
Time runs from the first sign-up until the queue is empty.

| Tray latency | users enabled | wall time | users/s | Tray requests/s | ÷ budget (${budget}/s) | ÷ ceiling 30/(4+k) = ${fmt(ceilingUsers, 1)} users/s | rate-limit answers | dead-lettered |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${runs.map(row).join('\n')}

Target (issue 9): at every latency ≥ 0.9 × the budget (≥ ${fmt((0.9 * budget) / (4 + AUTHS), 2)} users/s), rate-limit answers ≤ 1 %, nobody dead-lettered.

## The worker's own cost per user (zero-latency Tray)

${USERS} users against a stand-in answering at once (rate limit still on, so the pacer still paces):

| measure | value |
| --- | --- |
| wall time / users per second | ${fmt(cost.result.counts.throughput!.seconds)} s / ${fmt(cost.result.counts.throughput!.usersPerSecond, 2)} (the pacer holds it to the budget) |
| CPU of the whole process per user (worker, trigger, emulators and stand-in together) | ${fmt(aws.cpuMs / USERS, 2)} ms |
| worker invocations | ${aws.invocations} (${fmt(USERS / aws.invocations, 1)} users per invocation) |
| DynamoDB requests per user | ${fmt(dynamoTotal / USERS, 2)} (${dynamo.map(([op, n]) => `${op} ${fmt(n / USERS, 2)}`).join(', ')}) |
| Secrets Manager reads per invocation | ${fmt(aws.secretReads / aws.invocations, 2)} (${aws.secretReads} in all: master token once per invocation, credentials cached 5 min per container) |
| peak RSS of the process (emulators included) | ${fmt(cost.peakRssMb)} MiB |

Where the time goes: a fresh user is ${4 + AUTHS} Tray calls in sequence plus Tray's 2 s wait before the
enable, so one user takes ${4 + AUTHS} × latency + 2 s whatever the worker does; throughput comes from
running many users at once. Each invocation runs its batch's users together (up to 64) and
they take the pacer's slots in turn, so calls in flight are as many as rate × latency needs and
the pacer stays busy until the batch's last round; a user waiting out Tray's 2 s leaves its
slots to others. What is lost is the start of the run (sign-ups, the first batch gathering),
the last round trip of each batch, and the gaps between batches. The worker's own work per user — ${fmt(dynamoTotal / USERS, 0)} DynamoDB
writes and reads, JSON and GraphQL encoding — is ${fmt(aws.cpuMs / USERS, 1)} ms of CPU on this machine
with everything in one process, small against ${4 + AUTHS} Tray round trips.

## Cold start

Module init of each bundle (import; for the worker also config validation, clients and the middy
chain) in a fresh Node process, median of ${COLD_START_RUNS}, under this machine's Node and the Lambda
runtime's (Node ${LAMBDA_NODE_MAJOR}); with and without \`--enable-source-maps\`.

| function | Node | module init | with \`--enable-source-maps\` | source maps cost |
| --- | --- | --- | --- | --- |
${cold.results.map((c) => `| ${c.fn} | ${c.node} | ${fmt(c.ms)} ms | ${fmt(c.msWithSourceMaps)} ms | ${fmt((100 * (c.msWithSourceMaps - c.ms)) / c.ms, 0)} % |`).join('\n')}
${cold.skipped.length > 0 ? `\nNot measured under ${cold.skipped.join('; ')}.\n` : ''}
Source maps at runtime: ${SOURCE_MAPS_NOTE}

## Lambda bundles (esbuild, ESM, minified, target node${LAMBDA_NODE_MAJOR})

| function | size | packages bundled |
| --- | --- | --- |
${Object.entries(bundles)
  .map(([name, b]) => `| ${name} | ${fmt(b.kb)} KiB | ${b.packages.join(', ')} |`)
  .join('\n')}
`;

if (process.argv.includes('--write')) writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), report);
process.stdout.write(report);
process.exit(0);
