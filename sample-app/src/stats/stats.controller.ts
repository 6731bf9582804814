import { Controller, Get } from '@nestjs/common';
import { StatsService } from './stats.service.js';

@Controller()
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  @Get('stats')
  snapshot() {
    return this.stats.snapshot();
  }
}
