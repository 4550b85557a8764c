/** Heartbeat bodies every HTTP endpoint answers 400 to, as `[description, body]` for `it.each`. */
export const MALFORMED_HEARTBEATS: ReadonlyArray<readonly [description: string, body: string]> = [
  ['not JSON', 'id=api-1'],
  ['no id', '{"seq":1}'],
  ['an empty id', '{"id":""}'],
  ['a numeric id', '{"id":7}'],
  ['an array', '[]'],
  ['an over-long id', JSON.stringify({ id: 'x'.repeat(300) })],
  ['an empty body', ''],
];
