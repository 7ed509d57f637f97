/*
 * The running node's process id on disk, so `cartero reload` (and an init system) can find it. Written
 * once the listeners are up; removed at a clean stop only if it still names this process, so a second
 * node started by mistake cannot delete the first one's file on its way out.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

export function writePidFile(path: string, pid = process.pid): void {
  writeFileSync(path, `${pid}\n`, { mode: 0o644 });
}

/** The pid in the file, or null when there is no readable pid. */
export function readPidFile(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const m = /^\s*(\d{1,10})\s*$/.exec(text);
  return m ? Number(m[1]) : null;
}

export function removePidFile(path: string, pid = process.pid): void {
  if (readPidFile(path) === pid) rmSync(path, { force: true });
}

/** True when a process with this pid exists (signal 0 only checks). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
