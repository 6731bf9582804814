// The resource the safety checker protects: a counter in etcd guarded by fencing tokens, as a
// careful user guards any store (docs/guarantees.md). The register remembers the highest
// token it has seen, on entry as well as on write, and refuses any lower one: a holder that
// was paused or cut off and still writes after a newer holder came in is rejected.
import { CompareResult, CompareTarget, type Etcd3 } from 'etcd3';

/** Tokens as fixed-width decimals, so etcd's byte-wise value compare orders them as numbers. */
const padded = (token: bigint) => token.toString().padStart(20, '0');

/** One accepted write, as logged in etcd beside the counter (etcd's log is the ground truth). */
export interface LoggedWrite {
  writeId: string;
  token: bigint;
  count: number;
  revision: bigint; // create revision of the log entry: the order etcd accepted the writes in
}

export class FencedRegister {
  private readonly fence: Buffer;
  private readonly counter: Buffer;

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
  ) {
    this.fence = Buffer.from(`${prefix}fence`);
    this.counter = Buffer.from(`${prefix}count`);
  }

  /** Starts from zero: count 0, fence 0, empty log. */
  async reset(): Promise<void> {
    await this.client.delete().prefix(this.prefix);
    await this.client.put(this.fence).value(padded(0n));
    await this.client.put(this.counter).value('0');
  }

  /**
   * Enters with `token`: raises the fence to it and reads the counter, in one transaction.
   * Refused (accepted: false) if a higher token was seen already.
   */
  async enter(token: bigint): Promise<{ accepted: boolean; count: number }> {
    const res = await this.client.kv.txn({
      compare: [this.newerTokenSeen(token)],
      success: [{ request_range: { key: this.counter } }],
      failure: [{ request_put: { key: this.fence, value: Buffer.from(padded(token)) } }, { request_range: { key: this.counter } }],
    });
    const read = res.responses.find(r => r.response_range)?.response_range?.kvs[0];
    return { accepted: !res.succeeded, count: Number(read?.value.toString() ?? '0') };
  }

  /**
   * Writes `count` with `token`, logging it under `writeId`; refused if a higher token was
   * seen. Absolute values: a retried write whose first try went through changes nothing.
   */
  async write(token: bigint, count: number, writeId: string): Promise<boolean> {
    const res = await this.client.kv.txn({
      compare: [this.newerTokenSeen(token)],
      success: [],
      failure: [
        { request_put: { key: this.counter, value: Buffer.from(String(count)) } },
        { request_put: { key: Buffer.from(`${this.prefix}log/${writeId}`), value: Buffer.from(JSON.stringify({ token: String(token), count })) } },
      ],
    });
    return !res.succeeded;
  }

  /** The counter and every accepted write, in the order etcd accepted them. */
  async history(): Promise<{ count: number; writes: LoggedWrite[] }> {
    const count = Number((await this.client.get(this.counter).string()) ?? 'NaN');
    const res = await this.client.kv.range({ key: Buffer.from(`${this.prefix}log/`), range_end: Buffer.from(`${this.prefix}log0`) });
    const writes = res.kvs
      .map(kv => {
        const value = JSON.parse(kv.value.toString()) as { token: string; count: number };
        return { writeId: kv.key.toString().slice(`${this.prefix}log/`.length), token: BigInt(value.token), count: value.count, revision: BigInt(kv.create_revision) };
      })
      .sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
    return { count, writes };
  }

  async clear(): Promise<void> {
    await this.client.delete().prefix(this.prefix);
  }

  // the transaction "succeeds" when the fence is above our token: that is the refusal
  private newerTokenSeen(token: bigint) {
    return { key: this.fence, target: CompareTarget.Value, result: CompareResult.Greater, value: Buffer.from(padded(token)) };
  }
}
