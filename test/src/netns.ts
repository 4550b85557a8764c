/**
 * Network namespaces for partition tests (Linux, root, iproute2 and iptables): a bridge
 * in the test's own namespace (the side called `host`) and one namespace per side, each
 * with an address on the bridge. A partition drops, in every namespace of each group,
 * the packets arriving from the other group (iptables INPUT rules): packets vanish, so
 * TCP connections across the cut hang as they do on a real partition, while each group
 * still talks within itself. `heal()` removes every rule.
 *
 * @example
 * ```ts
 * const net = await createNetwork(['a', 'b', 'c']);
 * spawn('ip', [...net.exec('b'), 'redis-server', '--bind', net.address('b')]);
 * await net.partition(['host', 'a'], ['b', 'c']);
 * await net.heal();
 * await net.close();
 * ```
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A bridge and namespaces on it. */
export interface Network extends AsyncDisposable {
  /** The test's own address on the bridge (the host side). */
  readonly hostAddress: string;
  /** The address of a side. */
  address(side: string): string;
  /** The command prefix that runs a program inside a side: `['ip', 'netns', 'exec', <ns>]` without the `ip`. */
  exec(side: string): string[];
  /** Splits the sides (and `host`, the test's own namespace) into two groups that cannot reach each other. */
  partition(a: readonly string[], b: readonly string[]): Promise<void>;
  /** Removes every partition. */
  heal(): Promise<void>;
  /** Deletes the namespaces, links and bridge. Idempotent. */
  close(): Promise<void>;
}

/**
 * Why partition tests cannot run here, or undefined when they can: they need Linux,
 * root and `ip netns`.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root, as CI does)';
  try {
    await run('ip', ['netns', 'list']);
  } catch (error) {
    return `\`ip netns\` is not available (install iproute2): ${error instanceof Error ? error.message : String(error)}`;
  }
  try {
    await run('iptables', ['-S', 'INPUT']);
  } catch (error) {
    return `iptables is not available (install iptables): ${error instanceof Error ? error.message : String(error)}`;
  }
  return undefined;
}

/** Creates a bridge and one namespace per side on it. */
export async function createNetwork(sides: readonly string[]): Promise<Network> {
  const tag = (process.pid % 100_000).toString(36);
  // A /24 no other interface holds (a network another process left behind, or one whose
  // pid falls on the same number): two bridges on one subnet would route each other's packets away.
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show']);
  const used = new Set([...stdout.matchAll(/ 10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
  let third = process.pid % 250;
  for (let i = 0; i < 250 && used.has(third); i++) third = (third + 1) % 250;
  const subnet = `10.213.${third}`;
  const bridge = `bqb${tag}`;
  const ns = (side: string): string => `bq${tag}${side}`;
  const hostVeth = (side: string): string => `bqh${tag}${side}`.slice(0, 15);
  const created: string[] = [];
  /** iptables rules added in the host namespace, to delete on heal. */
  const hostRules: string[][] = [];
  const ip = (...args: string[]): Promise<unknown> => run('ip', args);
  const iptables = (side: string, args: string[]): Promise<unknown> =>
    side === 'host' ? run('iptables', args) : run('ip', ['netns', 'exec', ns(side), 'iptables', ...args]);
  const heal = async (): Promise<void> => {
    for (const rule of hostRules.splice(0)) await run('iptables', ['-D', ...rule]).catch(() => undefined);
    for (const side of sides) await iptables(side, ['-F', 'INPUT']).catch(() => undefined);
  };
  const close = async (): Promise<void> => {
    await heal();
    for (const side of sides) {
      await ip('netns', 'del', ns(side)).catch(() => undefined);
      await ip('link', 'del', hostVeth(side)).catch(() => undefined);
    }
    await ip('link', 'del', bridge).catch(() => undefined);
    created.length = 0;
  };
  await close(); // leftovers of a run that died
  try {
    await ip('link', 'add', bridge, 'type', 'bridge');
    await ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (const [i, side] of sides.entries()) {
      const name = ns(side);
      const inner = `bqi${tag}${side}`.slice(0, 15);
      await ip('netns', 'add', name);
      created.push(name);
      await ip('link', 'add', hostVeth(side), 'type', 'veth', 'peer', 'name', inner);
      await ip('link', 'set', inner, 'netns', name);
      await ip('link', 'set', hostVeth(side), 'master', bridge);
      await ip('link', 'set', hostVeth(side), 'up');
      await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${subnet}.${i + 2}/24`, 'dev', inner);
      await ip('netns', 'exec', name, 'ip', 'link', 'set', inner, 'up');
      await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
    }
  } catch (error) {
    await close();
    throw error;
  }
  const index = (side: string): number => {
    const i = sides.indexOf(side);
    if (i < 0) throw new Error(`unknown side ${JSON.stringify(side)}; sides: host, ${sides.join(', ')}`);
    return i;
  };
  const address = (side: string): string => (side === 'host' ? `${subnet}.1` : `${subnet}.${index(side) + 2}`);
  const drop = async (at: string, from: string): Promise<void> => {
    const rule = ['INPUT', '-s', `${address(from)}/32`, '-j', 'DROP'];
    await iptables(at, ['-A', ...rule]);
    if (at === 'host') hostRules.push(rule);
  };
  return {
    hostAddress: `${subnet}.1`,
    address,
    exec: (side) => {
      index(side);
      return ['netns', 'exec', ns(side)];
    },
    partition: async (a, b) => {
      for (const x of a) {
        for (const y of b) {
          await drop(x, y);
          await drop(y, x);
        }
      }
    },
    heal,
    close,
    [Symbol.asyncDispose]: close,
  };
}
