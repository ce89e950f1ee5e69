import { sendingAccount } from './client-certs.ts';
import { UNAVAILABLE_ACTION, type PolicyDecider } from './policy-service.ts';

/** The policy: per-user sending limits at DATA on the submission ports (a login, or a client certificate's account); everything else passes. */
export function sendingPolicy(decide: (request: { user: string; recipients: number; queueId: string }) => Promise<{ verdict: string; reply?: string }>): PolicyDecider {
  return async (request) => {
    const user = sendingAccount(request);
    if (request.protocol_state !== 'DATA' || user === '') return 'DUNNO';
    const decision = await decide({ user, recipients: Number(request.recipient_count ?? 0) || 1, queueId: request.queue_id ?? '' });
    return decision.verdict === 'accept' ? 'DUNNO' : (decision.reply ?? UNAVAILABLE_ACTION);
  };
}
