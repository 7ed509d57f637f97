/*
 * IDLE (RFC 2177): "+ idling", then changes are pushed as the change feed signals them (EXISTS,
 * EXPUNGE/VANISHED and FETCH FLAGS are all allowed while idling) until the client sends DONE. A shutdown
 * ends the IDLE with BYE; the autologout timer keeps running while idle.
 */
import { Args } from '../../proto/tokens.js';
import { bad, ok, type CommandHandler } from '../types.js';

export const idle: CommandHandler = async (ctx, cmd) => {
  new Args(cmd.args).end();
  ctx.send('+ idling\r\n');
  await ctx.sync(true);
  await ctx.flush();
  let busy: Promise<void> = Promise.resolve();
  let closed = false;
  ctx.onWake(() => {
    if (ctx.isDraining() && !closed) {
      closed = true;
      ctx.close('* BYE Server shutting down\r\n');
      return;
    }
    busy = busy.then(async () => {
      try {
        await ctx.sync(true);
        await ctx.flush();
      } catch (err) {
        ctx.log.warn({ err }, 'sync during IDLE failed');
      }
    });
  });
  if (ctx.view) ctx.view.dirty = ctx.view.dirty || false;
  const line = await ctx.readRawLine();
  ctx.onWake(null);
  await busy;
  if (line === null) return ok('IDLE terminated');
  if (line.toUpperCase() !== 'DONE') return bad('Expected DONE');
  return ok('IDLE terminated');
};
