// Worker threads do not inherit tsx's loader: when running from TypeScript sources (npm start, tests),
// the worker starts here, registers tsx, then loads the real worker module.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
