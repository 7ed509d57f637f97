/*
 * Fault injection for the postgres backend's tests: damage a blob, cut a node's connections.
 * Lives here so that SQL stays inside the backend directory. Never imported by production code.
 * Errors are thrown as they come: a test that cannot inject its fault must fail loudly.
 */
import pg from 'pg';
import { JOB_LOCK_NAMESPACE } from '../../cluster-common.js';

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Flips the first byte of a blob so that reads must detect the damage. */
export async function corruptBlob(url: string, id: string): Promise<void> {
  await withClient(url, async (c) => {
    const res = await c.query("UPDATE blobs SET content = set_byte(content, 0, (get_byte(content, 0) # 255)) WHERE id = $1 AND length(content) > 0", [id]);
    if (res.rowCount !== 1) throw new Error(`corruptBlob: blob ${id} not found`);
  });
}

/** Terminates every other session on this database with the given application_name (e.g. 'cartero-listen'). */
export async function terminateSessions(url: string, applicationName: string): Promise<number> {
  return withClient(url, async (c) => {
    const res = await c.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`,
      [applicationName],
    );
    return res.rowCount ?? 0;
  });
}

/**
 * Kills the connection holding a singleton job's advisory lock (as a dead node's would end) and
 * returns its backend pid, or null when nobody holds the job.
 */
export async function terminateJobHolder(url: string, job: string): Promise<number | null> {
  return withClient(url, async (c) => {
    const res = await c.query<{ pid: number }>(
      `SELECT l.pid FROM cluster_jobs j JOIN pg_locks l
          ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $2::int::oid AND l.objid = j.lock_key::oid
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       WHERE j.name = $1`,
      [job, JOB_LOCK_NAMESPACE],
    );
    const pid = res.rows[0]?.pid;
    if (pid === undefined) return null;
    await c.query('SELECT pg_terminate_backend($1)', [pid]);
    return pid;
  });
}
