/**
 * Benchmarks, run with `npm run bench` (prints Markdown) or `npm run bench -- --write`
 * (replaces BENCHMARKS.md). Measures, on this machine:
 *  - import throughput of the real worker handler through the local event-source poller,
 *    against the emulators and the Tray stand-in (no rate limit, no faults), and Tray calls per user;
 *  - memory (peak RSS and heap) during that run;
 *  - the worker's cold start (module import + handler construction);
 *  - the size of each Lambda bundle, built with esbuild as the stack builds it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { build, type BuildOptions } from 'esbuild';
import { ESM_REQUIRE_BANNER } from '../infra/constructs/lambda-function.js';
import { DEMO_USER_POOL_ID, demoUsers } from '../local/demo.js';
import { startHarness } from '../test/support/worker-harness.js';

const USERS = Number(process.env.BENCH_USERS ?? 300);

async function throughput() {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const h = await startHarness({ env: { BATCH_CONCURRENCY: '5' } });
  const users = demoUsers(USERS);
  for (const user of users) await h.send(h.messageFor(user));
  let peakRss = 0;
  let peakHeap = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const start = performance.now();
  await h.drain(600_000);
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  let enabled = 0;
  for await (const entry of h.ledger.entries(DEMO_USER_POOL_ID)) if (entry.status === 'enabled') enabled++;
  const calls = h.stack.tray!.calls.length;
  await h.close();
  if (enabled !== USERS) throw new Error(`only ${enabled} of ${USERS} users were enabled`);
  return { seconds, usersPerSecond: USERS / seconds, callsPerUser: calls / USERS, peakRssMb: peakRss / 2 ** 20, peakHeapMb: peakHeap / 2 ** 20 };
}

/** The stack's esbuild settings (infra/constructs/lambda-function.ts). */
const bundleOptions = (name: string): BuildOptions => ({
  entryPoints: [new URL(`../functions/${name}/handler.ts`, import.meta.url).pathname],
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node24',
  format: 'esm',
  mainFields: ['module', 'main'],
  banner: { js: ESM_REQUIRE_BANNER },
  logLevel: 'silent',
});

/**
 * Module initialisation of the bundled worker in a fresh Node process, as Lambda's init phase
 * runs it (config validation, clients, middy chain): the median of several runs.
 */
async function coldStart(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cold-'));
  try {
    await build({ ...bundleOptions('import-worker'), outfile: join(dir, 'index.mjs') });
    const driver = join(dir, 'driver.mjs');
    writeFileSync(driver, `const t = performance.now(); await import('./index.mjs'); console.log(performance.now() - t);`);
    const env = {
      ...process.env,
      LEDGER_TABLE: 'bench',
      QUEUE_URL: 'http://127.0.0.1:1/000000000000/q',
      DLQ_URL: 'http://127.0.0.1:1/000000000000/dlq',
      MASTER_TOKEN_SECRET_ID: 'bench',
      IMPORT_PLAN_FILE: new URL('../local/demo-plan.json', import.meta.url).pathname,
      AWS_REGION: 'us-east-1',
    };
    const runs = Array.from({ length: 7 }, () => Number(execFileSync(process.execPath, [driver], { env, cwd: dir }).toString().trim()));
    return runs.sort((a, b) => a - b)[3]!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bundleSizes() {
  const sizes: Record<string, { kb: number; packages: string[] }> = {};
  for (const name of ['import-worker', 'post-confirmation']) {
    const result = await build({ ...bundleOptions(name), write: false, metafile: true });
    const packages = new Set<string>();
    for (const input of Object.keys(result.metafile.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      if (match) packages.add(match[1]!.startsWith('@smithy') || match[1]!.startsWith('@aws-sdk') || match[1]!.startsWith('@aws-crypto') ? match[1]!.split('/')[0]! : match[1]!);
    }
    sizes[name] = { kb: result.outputFiles[0]!.contents.byteLength / 1024, packages: [...packages].sort() };
  }
  return sizes;
}

const cold = await coldStart();
const run = await throughput();
const bundles = await bundleSizes();
const fmt = (n: number, d = 1) => n.toFixed(d);
const report = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${fmt(totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}.
Numbers from this machine's local stand-ins; in AWS, Tray's latency and its 30 requests/second limit dominate.

## Import throughput (real worker handler, local poller, emulators, Tray stand-in without rate limit)

| measure | value |
| --- | --- |
| users imported | ${USERS} (all enabled, checked in the ledger) |
| wall time | ${fmt(run.seconds, 2)} s |
| users per second (1 poller, batch 10, BATCH_CONCURRENCY 5) | ${fmt(run.usersPerSecond)} |
| Tray calls per fresh user | ${fmt(run.callsPerUser, 2)} (the documented 5: createExternalUser, authorize, createUserAuthentication, createSolutionInstance, updateSolutionInstance) |
| peak RSS of the process (emulators included) | ${fmt(run.peakRssMb)} MiB |
| peak heap used | ${fmt(run.peakHeapMb)} MiB |

## Worker cold start

| measure | value |
| --- | --- |
| module init of the bundled worker (import + config validation + clients + middy chain), fresh Node ${process.version} process, median of 7 | ${fmt(cold)} ms |

## Lambda bundles (esbuild, ESM, minified, target node24)

| function | size | packages bundled |
| --- | --- | --- |
${Object.entries(bundles)
  .map(([name, b]) => `| ${name} | ${fmt(b.kb)} KiB | ${b.packages.join(', ')} |`)
  .join('\n')}
`;

if (process.argv.includes('--write')) writeFileSync(new URL('../BENCHMARKS.md', import.meta.url), report);
process.stdout.write(report);
process.exit(0);
