import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Req, Res } from '@nestjs/common';
import { prometheus } from './instrumentation.js';

/** Prometheus text format of the app's metrics, the lock metrics (`lock_*`) among them. */
@Controller()
export class MetricsController {
  @Get('metrics')
  metrics(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    prometheus.getMetricsRequestHandler(request, response);
  }
}
