import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';

/**
 * A Node.js binary of a given major, to measure init time under the Lambda runtime's Node when
 * this machine runs an older one. `BENCH_NODE<major>` (e.g. BENCH_NODE24=/opt/node24/bin/node)
 * names a binary, or `off` to skip; otherwise nodejs.org's build is fetched once from the npm
 * registry (package `node-<platform>-<arch>`, not a dependency: only the benchmark runs it) into
 * node_modules/.cache/node<major>. Returns why not when it cannot have one: the benchmark then
 * reports this machine's Node only.
 */
export function nodeBinary(major: number): { path: string; version: string } | { unavailable: string } {
  const given = process.env[`BENCH_NODE${major}`];
  if (given === 'off') return { unavailable: `BENCH_NODE${major}=off` };
  if (process.versions.node.split('.')[0] === String(major)) return { path: process.execPath, version: process.version };
  try {
    const path = given ?? fetchFromRegistry(major);
    const version = execFileSync(path, ['--version']).toString().trim();
    if (!version.startsWith(`v${major}.`)) return { unavailable: `${path} is Node ${version}, not ${major}` };
    return { path, version };
  } catch (e) {
    return { unavailable: (e as Error).message.split('\n')[0]! };
  }
}

function fetchFromRegistry(major: number): string {
  const dir = new URL(`../node_modules/.cache/node${major}/`, import.meta.url).pathname;
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const pkg = `node-${platform() === 'win32' ? 'win' : platform()}-${arch()}@${major}`;
  process.stderr.write(`bench: fetching ${pkg} from the npm registry into ${dir} (once)...\n`);
  const tarball = execFileSync('npm', ['pack', pkg, '--pack-destination', dir, '--silent'], { cwd: dir })
    .toString()
    .trim()
    .split('\n')
    .pop()!;
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir, 'package/bin/node']);
  rmSync(join(dir, tarball));
  return binary;
}
