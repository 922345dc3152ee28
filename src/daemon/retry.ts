/**
 * A daemon's first calls to its control plane (join, checking a saved token) wait for it
 * instead of failing: started before the control plane (a boot, a restart of both), an agent
 * keeps trying with capped exponential backoff and logs one line when it goes unreachable and
 * one when it is back, not one per attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_BACKOFF, backoffDelay } from '../core/backoff.ts';
import { ControlPlaneLink } from '../core/connection-state.ts';
import { callFailure, describeFailure } from '../sdk/failure.ts';
import type { Logger } from './logger.ts';

/** `attempt` until it succeeds or fails for another reason than an unreachable control plane (which it then throws). */
export async function untilReachable<T>(where: string, log: Logger, attempt: () => Promise<T>, retryable: (e: unknown) => boolean = (e) => callFailure(e) === 'unreachable'): Promise<T> {
  const link = new ControlPlaneLink(where, '', AGENT_BACKOFF.maxMs / 1000);
  for (;;) {
    try {
      const result = await attempt();
      // Only a comeback is news here: the agent itself says "connected" when it starts.
      if (link.state !== 'starting') log.info(link.succeeded());
      return result;
    } catch (e) {
      if (!retryable(e)) throw e;
      const line = link.failed('unreachable', describeFailure(e));
      if (line) log.warn(line);
      await sleep(backoffDelay(link.failures));
    }
  }
}
