import { Injectable } from '@nestjs/common';
import { SampleConfig } from '../config/sample.config.js';
import { EtcdStore } from '../store/etcd.store.js';

/** This replica's counters, served by GET /stats. */
@Injectable()
export class StatsService {
  payRequestsServed = 0; // POST /orders/:id/pay answered 2xx (paid now, or found already paid)
  paymentsMade = 0; // of those, the ones that paid
  alreadyPaid = 0;
  conflicts = 0; // lock not acquired within waitTimeout: answered 409
  locksLost = 0;
  jobRuns = 0;
  jobSkips = 0; // another replica held the tick's lock
  jobDoubleRuns = 0; // the tick had already run: the lock failed to make the job run once

  constructor(
    private readonly config: SampleConfig,
    private readonly store: EtcdStore,
  ) {}

  snapshot() {
    return {
      replica: this.config.replica,
      pid: process.pid,
      payRequestsServed: this.payRequestsServed,
      paymentsMade: this.paymentsMade,
      alreadyPaid: this.alreadyPaid,
      conflicts: this.conflicts,
      staleWritesRejected: this.store.staleWritesRejected,
      locksLost: this.locksLost,
      jobRuns: this.jobRuns,
      jobSkips: this.jobSkips,
      jobDoubleRuns: this.jobDoubleRuns,
    };
  }
}
