import { Controller, Get } from '@nestjs/common';
import { SampleConfig } from '../config/sample.config.js';
import { StatsService } from './stats.service.js';

@Controller()
export class StatsController {
  constructor(
    private readonly stats: StatsService,
    private readonly config: SampleConfig,
  ) {}

  @Get('health')
  health() {
    return { status: 'ok', replica: this.config.replica };
  }

  @Get('stats')
  snapshot() {
    return this.stats.snapshot();
  }
}
