/**
 * Where a LockService reports what an operator should know: its start, each lock lost and its
 * shutdown, never each acquisition. Nest's `Logger` and any `LoggerService` fit.
 * @publicApi
 */
export interface LockLogger {
  log(message: string): unknown;
  warn(message: string): unknown;
  error(message: string): unknown;
}
