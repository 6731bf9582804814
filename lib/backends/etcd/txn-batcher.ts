import type { Etcd3, ITxnRequest, ITxnResponse } from 'etcd3';

/** etcd's default `--max-txn-ops`: operations per branch of one Txn. Lowered when a server refuses a batch. */
const DEFAULT_MAX_OPS = 128;

interface Pending {
  readonly lock: string;
  readonly request: ITxnRequest;
  resolve(response: ITxnResponse): void;
  reject(error: unknown): void;
}

/**
 * Group commit: the Txns of the locks of one process go out as ONE Txn of nested Txns while an
 * earlier one is in flight. Each nested Txn keeps its own compares, so one busy lock does not
 * fail the others; all of them commit at one revision. A request alone goes out at once, as
 * itself (no added latency when idle, and the same request a lone acquire always sent).
 *
 * Two requests of the same lock never share a batch: they would share a revision, and FIFO
 * order and fencing tokens would tie. A failed batch fails each of its requests, which their
 * callers retry by the rules they already follow for a request whose outcome is unknown.
 */
export class TxnBatcher {
  private inFlight = false;
  private readonly waiting: Pending[] = [];
  /** Nested Txns per batch: etcd's limit, learnt from its refusal if lower than the default. */
  private maxOps = DEFAULT_MAX_OPS;

  constructor(private readonly client: Etcd3) {}

  /** Sends `request` (a Txn of the lock whose queue prefix is `lock`), alone or in the next batch. */
  txn(lock: string, request: ITxnRequest): Promise<ITxnResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ lock, request, resolve, reject });
      if (!this.inFlight) this.flush();
    });
  }

  private flush(): void {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.inFlight = true;
    const next = () => {
      this.inFlight = false;
      this.flush();
    };
    // after a batch, the next leaves once its callers have run on (setImmediate: after every
    // pending microtask): what they send next (a release after an acquire) joins it instead
    // of waiting a whole round trip for the batch after. After a lone request, nothing waits:
    // its caller's next request would go alone anyway, and a sequential cycle gains no delay
    void this.send(batch).finally(() => (batch.length > 1 ? setImmediate(next) : next()));
  }

  /** The oldest waiting requests, at most one per lock and `maxOps` in all; the others wait for the next batch. */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const locks = new Set<string>();
    for (let i = 0; i < this.waiting.length && batch.length < this.maxOps; ) {
      const pending = this.waiting[i];
      if (locks.has(pending.lock)) {
        i++;
        continue;
      }
      locks.add(pending.lock);
      batch.push(pending);
      this.waiting.splice(i, 1);
    }
    return batch;
  }

  private async send(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch;
      await this.client.kv.txn(only.request).then(only.resolve, only.reject);
      return;
    }
    let response: ITxnResponse;
    try {
      response = await this.client.kv.txn({ compare: [], success: batch.map(p => ({ request_txn: p.request })), failure: [] });
    } catch (err) {
      if (tooManyOps(err) && batch.length > 1) {
        // this server allows fewer operations per Txn: send these again in smaller batches
        this.maxOps = Math.max(1, Math.floor(batch.length / 2));
        this.waiting.unshift(...batch);
        return;
      }
      for (const pending of batch) pending.reject(err);
      return;
    }
    batch.forEach((pending, i) => {
      const nested = response.responses[i]?.response_txn;
      if (!nested) return pending.reject(new Error(`etcd answered a batch of ${batch.length} Txns without the answer of Txn ${i}`));
      // every nested Txn committed at the batch's revision: the header is the batch's
      pending.resolve({ ...nested, header: response.header });
    });
  }
}

function tooManyOps(err: unknown): boolean {
  return err instanceof Error && /too many operations in txn request/i.test(err.message);
}
