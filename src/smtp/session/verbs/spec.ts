/*
 * The shape of one verb module: the command phases it runs in, the reply elsewhere, whether it ends a
 * pipelined group (RFC 2920 §3.1), and its handler. Only the dispatcher reads `phases`/`refusals`;
 * handlers may assume they run in one of their phases.
 */
import type { Command, Verb } from '../../proto/command.js';
import type { Reply } from '../../proto/reply.js';
import type { SessionContext } from '../types.js';

export type CommandPhase = 'fresh' | 'ready' | 'mail';

export type CommandOf<V extends Verb> = Extract<Command, { verb: V }>;

export interface VerbSpec<V extends Verb> {
  verb: V;
  phases: readonly CommandPhase[];
  /** reply in a phase not listed in `phases` (default 503 5.5.1 bad sequence) */
  refusals?: Partial<Record<CommandPhase, Reply>>;
  /** replies are flushed right after this verb (it changes what the client may send next) */
  endsGroup: boolean;
  handle(ctx: SessionContext, cmd: CommandOf<V>): void | Promise<void>;
}

export const ALL_COMMAND_PHASES: readonly CommandPhase[] = ['fresh', 'ready', 'mail'];
