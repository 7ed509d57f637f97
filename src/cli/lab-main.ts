/*
 * A direct entry point for `cartero lab` (node --import tsx src/cli/lab-main.ts ARGS): the lab runner
 * starts its DNS server through it, so a lab works whether or not `lab` is registered in main.ts, and
 * tests can run the lab CLI without the rest of the command table. Same exit codes as `cartero`.
 */
import { processIo } from './context.js';
import { reportError } from './main.js';
import { runLab } from './lab.js';

let code: number;
try {
  code = await runLab(process.argv.slice(2), processIo);
} catch (err) {
  code = reportError(err, processIo);
}
process.stdout.write('', () => process.exit(code));
