/**
 * A reference, not a contender: the least a Node proxy on `node:http` and undici can
 * do — round robin, request headers not copied, no forwarding headers, no timeouts, no
 * accounting, no error handling. Its cost is the floor of Node's HTTP stack, against
 * which the real proxies' own work can be read.
 * Started as a child process; argv[2] is a JSON array of upstream base URLs.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

const upstreams = JSON.parse(process.argv[2] ?? '[]') as string[];
const agent = new Agent({ pipelining: 1, keepAliveTimeout: 60_000 });
let next = 0;
const server = createServer((req, res) => {
  agent.dispatch(
    { origin: upstreams[next++ % upstreams.length]!, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod },
    {
      onRequestStart() {},
      onResponseStart(_controller, status, headers) {
        res.writeHead(status, headers as Record<string, string>);
      },
      onResponseData(_controller, chunk) {
        res.write(chunk);
      },
      onResponseEnd() {
        res.end();
      },
      onResponseError(_controller, error) {
        res.destroy(error);
      },
    },
  );
});
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close();
  void agent.close().finally(() => process.exit(0));
});
