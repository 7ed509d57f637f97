/*
 * Helpers for end-to-end CLI tests: run `node --import tsx src/cli/main.ts …` as a child process in a
 * temporary directory with its own configuration (embedded store), and find free loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TempConfig {
  dir: string;
  file: string;
  cleanup(): void;
}

/** A temp directory holding cartero.yaml (embedded store in ./data) plus `yaml` appended. */
export function tempConfig(yaml = ''): TempConfig {
  const dir = mkdtempSync(join(tmpdir(), 'cartero-cli-'));
  const file = join(dir, 'cartero.yaml');
  writeFileSync(file, `hostname: mx.example.test\nstore: { backend: embedded, path: ./data }\n${yaml}`);
  return { dir, file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, CARTERO_CONFIG: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const child = spawnCli(args, options.env);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin?.end(options.stdin ?? '');
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  await new Promise((r) => server.close(r));
  if (!addr || typeof addr !== 'object') throw new Error('no port');
  return addr.port;
}
