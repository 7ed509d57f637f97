/*
 * Imported first by every entry point. libuv's default pool of 4 threads caps how many blob-file fsyncs
 * run at once, and with them the embedded store's throughput; the pool size is read when the pool first
 * starts, so it must be set before any asynchronous file, DNS or crypto call. An operator's value wins.
 */
process.env.UV_THREADPOOL_SIZE ??= '16';
export {};
