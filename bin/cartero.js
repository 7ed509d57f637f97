#!/usr/bin/env node
// The `cartero` command. Runs the compiled CLI after `npm run build`, otherwise the TypeScript sources
// through tsx, so a fresh clone works after `npm ci` alone.
process.env.UV_THREADPOOL_SIZE ??= '16'; // before anything starts libuv's pool (see src/threadpool.ts)
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
let cli;
if (existsSync(compiled)) {
  cli = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
// Installed (or symlinked) as `sendmail`, it is the Sendmail-compatible submission command.
const invokedAs = (process.argv[1] ?? '').split('/').pop();
const argv = invokedAs === 'sendmail' ? ['sendmail', ...process.argv.slice(2)] : process.argv.slice(2);
const code = await cli.main(argv);
process.stdout.write('', () => process.exit(code));
