import { Global, Module } from '@nestjs/common';
import { SampleConfig } from './sample.config.js';

/** Provides SampleConfig (from the environment) to every module, the lock module's factory included. */
@Global()
@Module({
  providers: [{ provide: SampleConfig, useFactory: () => SampleConfig.fromEnv() }],
  exports: [SampleConfig],
})
export class ConfigModule {}
