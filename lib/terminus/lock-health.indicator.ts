import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { LockService } from '../engine/lock.service.js';

/** Options of one check. */
export interface LockHealthCheckOptions {
  /** Ms the store has to answer (and a new session to open, if the last one expired). @default 1000 */
  timeout?: number;
  /** The lock service to check, for a named EtcdLockModule instance. @default the injected LockService */
  service?: LockService;
}

/**
 * A Terminus health indicator for locks (the `HealthIndicatorService` API of Terminus 11 and
 * later). Down when the lock service has no live session (its deadline passed and a new one
 * could not be opened in time) or the store does not answer within the timeout; up with the
 * session's headroom before its deadline (`validForMs`), and the locks held and waited for.
 * Add it to the providers of the module that imports `TerminusModule`.
 * @publicApi
 */
@Injectable()
export class LockHealthIndicator {
  // explicit tokens: apps built without decorator metadata (esbuild, tsx, SWC) inject them too
  constructor(
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(LockService) private readonly locks: LockService,
  ) {}

  async isHealthy<const Key extends string>(key: Key, options: LockHealthCheckOptions = {}): Promise<HealthIndicatorResult<Key>> {
    const { healthy, problem, ...details } = await (options.service ?? this.locks).health(options.timeout ?? 1000);
    const indicator = this.indicators.check(key);
    return healthy ? indicator.up(details) : indicator.down({ message: problem, ...details });
  }
}
