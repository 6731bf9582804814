// docs/recipes/cron-once-per-cluster.ts
import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { WithLock } from 'nestjs-etcd-lock';

@Injectable()
export class SettlementJob {
  /**
   * Every replica's scheduler fires each minute; one of them runs the job, the others skip.
   * minHold keeps the lock a little past a fast run, so a replica whose clock is a few hundred
   * milliseconds late does not run the same tick again.
   */
  @Cron('0 * * * * *')
  @WithLock('job:settlement', { onContention: 'skip', minHold: 5_000 })
  async settle(): Promise<void> {
    // ... the work of one tick
  }
}
