import { describe, expect, it } from '@jest/globals';
import { unavailableError } from '../../lib/backends/etcd/etcd-errors.js';

const grpc = (last: string) => new Error(`14 UNAVAILABLE: No connection established. Last error: ${last}. Resolution note: `);

describe('unavailableError', () => {
  it('names plain HTTP when a TLS client gets an answer no TLS server gives, or a reset before any connection', () => {
    expect(unavailableError(grpc('Error: write EPROTO wrong version number'), 'https://127.0.0.1:2379').message).toMatch(/plain HTTP.*http:\/\//);
    expect(unavailableError(grpc('read ECONNRESET'), 'https://127.0.0.1:2379').message).toMatch(/plain HTTP.*http:\/\//);
  });

  it('keeps a reset a reset when the endpoint is not TLS', () => {
    const message = unavailableError(grpc('read ECONNRESET'), 'http://127.0.0.1:2379').message;
    expect(message).toMatch(/did not answer at http:\/\/127\.0\.0\.1:2379: read ECONNRESET/);
    expect(message).not.toMatch(/plain HTTP/);
  });
});

describe('unavailableCause', () => {
  it('never prints "null" when grpc-js had not yet recorded why the connection failed', () => {
    const message = unavailableError(grpc('null'), 'http://127.0.0.1:2379').message;
    expect(message).toBe(
      'etcd did not answer at http://127.0.0.1:2379: no connection could be established. Check that etcd is running and reachable there, and the etcd.hosts option.',
    );
  });
});
