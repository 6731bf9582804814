// docs/recipes/queue-per-key.ts
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { WithLock } from 'nestjs-etcd-lock';

export interface ChargeJob {
  accountId: string;
  amount: number;
}

/**
 * Many workers on many replicas take jobs from the queue; jobs of one account run one at a
 * time, jobs of different accounts in parallel. A job whose account is busy waits (up to
 * waitTimeout, then it fails and BullMQ retries it as configured).
 */
@Processor('charges', { concurrency: 10 })
export class ChargesProcessor extends WorkerHost {
  @WithLock('account:<<job.data.accountId>>', { waitTimeout: 30_000 })
  async process(job: Job<ChargeJob>): Promise<void> {
    // ... charge job.data.amount to the account
    void job.data.amount;
  }
}
