import { Redis } from 'ioredis';

/** Calls per command since the server started, from `INFO commandstats` (commands run inside scripts included). */
export async function commandCalls(url: string): Promise<Map<string, number>> {
  const client = new Redis(url);
  try {
    const text = await client.info('commandstats');
    return new Map([...text.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)].map(m => [m[1], Number(m[2])]));
  } finally {
    client.disconnect();
  }
}

/** What Redis did per operation between two readings: script calls (EVALSHA + EVAL), PUBLISHes, and every command. */
export function perOp(before: Map<string, number>, after: Map<string, number>, operations: number): { scripts: number; publish: number; commands: number } {
  const spent = (name: string) => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) / operations;
  const all = [...after.keys()].filter(name => name !== 'info').reduce((sum, name) => sum + spent(name), 0);
  return { scripts: spent('evalsha') + spent('eval'), publish: spent('publish'), commands: all };
}

export const describeOp = (op: { scripts: number; publish: number; commands: number }) =>
  `${op.scripts.toFixed(2)} scripts, ${op.publish.toFixed(2)} PUBLISH, ${op.commands.toFixed(2)} commands/op (INFO commandstats, inside scripts included)`;
