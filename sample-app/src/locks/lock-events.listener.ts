import { Injectable, Logger } from '@nestjs/common';
import { OnLockEvent, type LockEvent } from 'nestjs-etcd-lock';
import { SampleConfig } from '../config/sample.config.js';
import { StatsService } from '../stats/stats.service.js';

/** Reacts to this replica's lock events: loss is a warning, conflicts are counted, the rest is debug. */
@Injectable()
export class LockEventsListener {
  private readonly logger = new Logger('Locks');

  constructor(
    private readonly stats: StatsService,
    private readonly config: SampleConfig,
  ) {}

  @OnLockEvent('lost')
  onLost(event: LockEvent): void {
    this.stats.locksLost++;
    this.logger.warn(`lock ${event.key} (token ${event.token}) LOST after ${Math.round(event.heldMs ?? 0)} ms: ${event.reason}`);
  }

  /** A route waited past its waitTimeout: it answers 409. */
  @OnLockEvent('timeout', { key: 'order:*' })
  onTimeout(): void {
    this.stats.conflicts++;
  }

  @OnLockEvent('*')
  onAny(event: LockEvent): void {
    if (!this.config.logLockEvents) return;
    const extra = [
      event.token !== undefined && `token=${event.token}`,
      event.waitedMs !== undefined && `waited=${event.waitedMs.toFixed(1)}ms`,
      event.heldMs !== undefined && `held=${event.heldMs.toFixed(1)}ms`,
      event.reason && `reason=${event.reason}`,
    ].filter(Boolean);
    this.logger.debug(`${event.type} ${event.key} ${extra.join(' ')}`);
  }
}
