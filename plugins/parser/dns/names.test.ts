// The mnemonic tables: every 16-bit number gives its name or '' (print TYPE<n>).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLASS_NAME, Names, OPTION_NAME, TYPE_NAME } from './names.js';

test('Names: the named numbers below and above the dense part, and nothing for the others up to 65535', () => {
  assert.equal(TYPE_NAME.get(1), 'A');
  assert.equal(TYPE_NAME.get(261), 'RESINFO');
  assert.equal(TYPE_NAME.get(32768), 'TA');
  assert.equal(TYPE_NAME.get(32769), 'DLV');
  assert.equal(CLASS_NAME.get(255), 'ANY');
  assert.equal(OPTION_NAME.get(10), 'COOKIE');
  const n = new Names([[3, 'x'], [2000, 'y']]);
  for (let i = 0; i < 65536; i++) assert.equal(n.get(i), i === 3 ? 'x' : i === 2000 ? 'y' : '');
  for (const t of [0, 54, 262, 1023, 1024, 32767, 32770, 65535]) assert.equal(TYPE_NAME.get(t), '', `type ${t}`);
});
