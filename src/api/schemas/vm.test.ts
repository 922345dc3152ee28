import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromZodError } from '../errors.ts';
import { MAX_DATA_DISKS, VmCreate } from './vm.ts';

/** The field and message a create body is refused with, as the API answers it. */
function refusal(body: object): { field: string | undefined; message: string } {
  const r = VmCreate.safeParse({ name: 'a', image: 'tiny', ...body });
  assert.equal(r.success, false, `accepted ${JSON.stringify(body)}`);
  const e = fromZodError(r.error!);
  return { field: e.field, message: e.message };
}

test('data disks: up to 8, each a size of at least 1M; a refusal names disks[N].size or disks', () => {
  assert.equal(MAX_DATA_DISKS, 8);
  const ok = VmCreate.parse({ name: 'a', image: 'tiny', disks: [{ size: '1M' }, { size: '10G' }] });
  assert.deepEqual(ok.disks, [{ size: '1M' }, { size: '10G' }]);
  assert.equal(VmCreate.parse({ name: 'a', image: 'tiny' }).disks, undefined);
  assert.ok(VmCreate.safeParse({ name: 'a', image: 'tiny', disks: Array.from({ length: 8 }, () => ({ size: '1G' })) }).success);

  assert.deepEqual(refusal({ disks: [{ size: '1G' }, { size: 'lots' }] }), { field: 'disks[1].size', message: 'disks[1].size: must be a size with a unit, e.g. 512M or 2G' });
  assert.deepEqual(refusal({ disks: [{ size: '1023K' }] }), { field: 'disks[0].size', message: 'disks[0].size: must be at least 1M' });
  assert.deepEqual(refusal({ disks: Array.from({ length: 9 }, () => ({ size: '1G' })) }), { field: 'disks', message: 'disks: at most 8 data disks' });
  assert.equal(refusal({ disks: [{ size: '1G', type: 'ssd' }] }).field, 'disks[0]');
});
