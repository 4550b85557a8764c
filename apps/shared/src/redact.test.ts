import { describe, expect, it } from 'vitest';
import { memoryLogger } from './log.ts';

describe('log redaction', () => {
  it('never writes credentials, at the top level or one level down', () => {
    const { logger, entries } = memoryLogger('info');
    const secrets = [
      'Bearer sk_live_top',
      'sk_live_key',
      'session=abc',
      'hunter2',
      'Bearer nested',
      'nested-key',
      'tok_1',
      'cookie-nested',
    ];
    logger.info({ authorization: secrets[0], apiKey: secrets[1], cookie: secrets[2], password: secrets[3] }, 'top');
    logger.info(
      {
        headers: { authorization: secrets[4], 'x-api-key': secrets[5], cookie: secrets[7], 'content-type': 'image/jpeg' },
        auth: { token: secrets[6] },
      },
      'nested',
    );
    logger.child({ requestId: 'r1' }).info({ req: { headers: { authorization: 'Bearer child' } } }, 'child');
    const text = JSON.stringify(entries);
    for (const secret of [...secrets, 'Bearer child']) expect(text).not.toContain(secret);
    expect(entries[0]).toMatchObject({ authorization: '[redacted]', apiKey: '[redacted]', cookie: '[redacted]', password: '[redacted]' });
    expect(entries[1]).toMatchObject({ headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', 'content-type': 'image/jpeg' } });
    expect(entries[2]).toMatchObject({ requestId: 'r1', req: { headers: { authorization: '[redacted]' } } });
  });
});
