// A LockService on a client it creates, closed after etcd compacted and restarted under it:
// exits 0 on its own once closed, or 3 when an uncaught error or unhandled rejection occurred.
// Driven over IPC by watch-lifetime.spec.ts: 'ready' → (etcd compacted, restarted) → 'close'.
import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { LockService, type LockHandle } from '../../lib/index.js';

const failures: string[] = [];
process.on('uncaughtException', err => failures.push(`uncaught: ${String(err)}`));
process.on('unhandledRejection', err => failures.push(`unhandled rejection: ${String(err)}`));
process.on('exit', () => {
  if (failures.length > 0) {
    process.stderr.write(`${failures.join('\n')}\n`);
    process.exitCode = 3;
  }
});

// SHARED_CLIENT: the app's own client, given to the library, with a watch of the app's open on it throughout
const hosts = process.env.ETCD_ENDPOINTS!.split(',');
// etcd3's own watch re-attaches after a backoff of up to 30 s by default, from a timer that
// closing the client does not clear: after etcd's restart that timer of the app's own watch
// alone kept this process alive (1 run in 7). The app caps it at 1 s, as the library's own
// clients do (createEtcdClient), so that only a handle the service left open can keep it alive
const appClient = process.env.SHARED_CLIENT
  ? new Etcd3({ hosts, faultHandling: { watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }) as unknown as IBackoff<unknown> } })
  : undefined;
const appWatch = await appClient?.watch().key('app/config').create();
appWatch?.on('error', err => failures.push(`the app's watch ended: ${String(err)}`));
const locks = new LockService({ ...(appClient ? { client: appClient } : { etcd: { hosts } }), prefix: process.env.LOCK_PREFIX, ttl: 2 });
await locks.onModuleInit(); // the session, and the library's watch stream
await (await locks.acquire('warm-up')).release();
const held: LockHandle[] = [];
// a lock held through the restart: its holder watch keeps the watch stream open at close()
if (process.env.HOLD_THROUGH_RESTART) held.push(await locks.acquire('held-through-restart'));
process.send!('ready');
process.on('message', async (message: { op: 'hold'; key: string } | { op: 'close'; delayMs: number }) => {
  if (message.op === 'hold') {
    // a lock held past its holder-watch delay: one more watch of ours on the new stream
    held.push(await locks.acquire(message.key));
    await sleep(200);
    process.send!('holding');
    return;
  }
  await sleep(message.delayMs);
  await locks.close();
  await sleep(300); // etcd's answer to what close() sent
  // the app's own cleanup; it never settles if etcd3 lost track of the stream
  const cancelled = await Promise.race([appWatch?.cancel().then(() => true), sleep(1000, false, { ref: false })]);
  if (appWatch && !cancelled) failures.push("the app's watch did not cancel");
  appClient?.close();
  process.send!('closed');
  process.disconnect(); // from here, only what the service left open keeps the process alive
  // still alive 3 s on: say what keeps it (the test fails then, and this names the culprit)
  setTimeout(() => process.stderr.write(`still alive 3 s after close(): ${process.getActiveResourcesInfo().join(', ')}\n`), 3000).unref();
});
