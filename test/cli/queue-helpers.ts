/*
 * Runs `cartero queue …` / `cartero sendmail …` as real child processes (bin/cartero.js) with bytes on stdin.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, type RunResult } from './helpers.js';

const ENTRY = [join(ROOT, 'bin/cartero.js')];

export function runCmd(args: string[], options: { stdin?: Buffer | string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [...ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, CARTERO_CONFIG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {}); // a command that exits before reading all of stdin
  child.stdin.end(options.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
