/**
 * A TCP proxy for fault tests: it sits between an etcd client (gRPC over HTTP/2) and etcd and can
 * add latency, blackhole traffic without a reset (a dead network path), drop only the replies (the
 * request reaches etcd, its answer never comes back) or cut every connection. Built on `net` only;
 * it listens on 127.0.0.1 and the tests point it at a loopback etcd, so traffic stays on loopback.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export type ProxyMode = 'pass' | 'blackhole' | 'drop-replies';
export type ProxyDirection = 'replies' | 'requests' | 'both';

export interface TcpProxy {
  readonly url: string; // 'http://127.0.0.1:<port>': what the client uses as its etcd host
  readonly port: number;
  readonly connections: number; // client connections currently open through the proxy
  /** Delays every chunk sent in `direction` by `ms` from the moment it arrives (order kept); 0 = none. */
  setLatency(ms: number, direction?: ProxyDirection): void;
  /** Applies to each chunk as it arrives: pass forwards, blackhole discards both ways, drop-replies discards server->client. */
  setMode(mode: ProxyMode): void;
  /** Destroys every open connection pair now; new connections are still accepted. */
  cut(): void;
  /** Stops listening and destroys everything; idempotent. */
  close(): Promise<void>;
}

type Flow = 'requests' | 'replies';

/** Queued in place of a chunk: the sender half-closed, so the receiver gets a FIN in its turn. */
const END = null;

/** One direction of one connection: forwards chunks in arrival order, each held for the latency it arrived under. */
class Pipe {
  private queue: { chunk: Buffer | typeof END; due: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly to: net.Socket, private readonly latency: () => number) {
    to.once('close', () => this.stop());
  }

  push(chunk: Buffer | typeof END): void {
    const ms = this.latency();
    if (ms <= 0 && this.queue.length === 0) return this.deliver(chunk);
    // FIFO, released from the head only: a chunk never overtakes one held longer (latency lowered)
    this.queue.push({ chunk, due: performance.now() + ms });
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.queue.length > 0 && this.queue[0].due <= performance.now()) this.deliver(this.queue.shift()!.chunk);
      this.schedule();
    }, this.queue[0].due - performance.now());
    this.timer.unref(); // the sockets keep the process alive while they matter, not a queued chunk
  }

  private deliver(chunk: Buffer | typeof END): void {
    if (this.to.destroyed) return;
    if (chunk === END) this.to.end();
    else this.to.write(chunk);
  }
}

/** Starts a proxy on 127.0.0.1 (a free port) to `target`: 'http://127.0.0.1:2379' or 'host:port'. */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port } = new URL(target.includes('://') ? target : `tcp://${target}`);
  const targetHost = hostname.replace(/^\[(.*)\]$/, '$1'); // URL keeps an IPv6 literal's brackets
  const targetPort = Number(port);
  if (!targetPort) throw new Error(`tcp-proxy: no port in target ${target}`);

  let mode: ProxyMode = 'pass';
  const latency: Record<Flow, number> = { requests: 0, replies: 0 };
  const clients = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  const discards = (flow: Flow) => mode === 'blackhole' || (mode === 'drop-replies' && flow === 'replies');

  // Mode and latency are read per chunk as it arrives, hence manual piping rather than stream.pipe().
  const forward = (from: net.Socket, to: net.Socket, flow: Flow) => {
    const pipe = new Pipe(to, () => latency[flow]);
    from.on('data', (chunk: Buffer) => {
      if (!discards(flow)) pipe.push(chunk);
    });
    from.on('end', () => {
      if (!discards(flow)) pipe.push(END); // a dead path does not carry a FIN either
    });
  };

  const server = net.createServer((client) => {
    // Opened even in blackhole mode: harmless, and the client must not notice anything at all.
    const upstream = net.connect(targetPort, targetHost);
    const destroyPair = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const [socket, set] of [[client, clients], [upstream, upstreams]] as const) {
      set.add(socket);
      socket.once('close', () => set.delete(socket));
      socket.on('error', destroyPair); // ECONNRESET, EPIPE, ECONNREFUSED...: quietly, no unhandled error
      socket.setNoDelay(true); // HTTP/2 frames are small; Nagle would add latency we did not ask for
    }
    forward(client, upstream, 'requests');
    forward(upstream, client, 'replies');
  });
  server.on('error', () => {}); // accept errors (EMFILE...) must not crash a test run

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const listenPort = (server.address() as net.AddressInfo).port;

  const cut = () => {
    for (const client of clients) if (!client.destroyed) client.resetAndDestroy(); // RST: the client sees a reset
    for (const upstream of upstreams) upstream.destroy();
    // sockets report 'close' a tick later; the count must say 0 right away
    clients.clear();
    upstreams.clear();
  };
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${listenPort}`,
    port: listenPort,
    get connections() {
      return clients.size;
    },
    setLatency(ms, direction = 'both') {
      if (direction !== 'replies') latency.requests = ms;
      if (direction !== 'requests') latency.replies = ms;
    },
    setMode(next) {
      mode = next;
    },
    cut,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve()); // called once every connection is gone, which cut() sees to
        cut();
      });
      return closing;
    },
  };
}
