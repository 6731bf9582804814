import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { LockService, WithLock } from 'nestjs-etcd-lock';
import { SampleConfig } from '../config/sample.config.js';
import { StatsService } from '../stats/stats.service.js';
import { EtcdStore } from '../store/etcd.store.js';

/** How often each replica tries the job; a tick is one wall-clock second, so ~2 tries per tick per replica. */
export const SETTLEMENT_INTERVAL_MS = 500;

/**
 * A settlement job that must run once per second across the whole cluster. Every replica
 * tries it every 500 ms; the lock `job:settlement:<tick>` lets one replica run a tick and
 * the others skip it. minHold keeps the key locked for 1.5 s after the run started, longer
 * than the tick's second, so a replica that tries the same tick late in its second (after
 * a fast run has finished) still finds it locked. With a minHold shorter than the tick
 * window (say 300 ms), a later try in the same second would take the freed lock and run
 * the tick again: the job records every run, so that would show up as a double run.
 */
@Injectable()
export class SettlementJob implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SettlementJob.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: EtcdStore,
    private readonly locks: LockService,
    private readonly stats: StatsService,
    private readonly config: SampleConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), SETTLEMENT_INTERVAL_MS);
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** One try: run the current second's settlement, unless another replica has it. */
  async tick(): Promise<'ran' | 'skipped'> {
    try {
      const ran = await this.settle(Math.floor(Date.now() / 1000));
      if (ran === undefined) this.stats.jobSkips++; // @WithLock skipped it: the tick's lock was busy
      return ran === undefined ? 'skipped' : 'ran';
    } catch (err) {
      this.logger.warn(`settlement try failed: ${(err as Error).message}`);
      return 'skipped';
    }
  }

  /** Runs under `job:settlement:<tick>`; returns undefined (without running) when the lock is busy. */
  @WithLock('job:settlement:<<tick>>', { onContention: 'skip', minHold: 1_500 })
  async settle(tick: number): Promise<boolean> {
    const lock = this.locks.current()!;
    const first = await this.store.recordJobRun(tick, this.config.replica, lock.token);
    this.stats.jobRuns++;
    if (!first) {
      this.stats.jobDoubleRuns++;
      this.logger.error(`DOUBLE RUN: settlement tick ${tick} had already run`);
    }
    return first;
  }
}
