import { ButterInNetns } from '../test/host/butter-cli.ts';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
const b = new ButterInNetns();
try {
  await b.start();
  console.log(b.ok(['image', 'warm', 'tiny', '--memory', '256M']));
  b.ok(['vm', 'create', 'd0', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--wait']);
  await new Promise((r) => setTimeout(r, 1500));
  const from = b.upLog.length;
  const t0 = Date.now(); console.log("t0", new Date(t0).toISOString().slice(11,23));
  b.ok(['vm', 'create', 'd1', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--wait']);
  await new Promise((r) => setTimeout(r, 1500));
  console.log('create --wait', Date.now() - t0, 'ms (includes CLI start)');
  for (const l of b.upLog.slice(from).split('\n')) {
    try { const j = JSON.parse(l); console.log(new Date(j.time).toISOString().slice(11,23), j.msg); } catch { if (l.trim()) console.log(l.slice(0, 200)); }
  }
  const vms = join(b.dataDir, 'agent', 'vms');
  for (const d of readdirSync(vms)) console.log(readFileSync(join(vms, d, 'console.log'), 'utf8').slice(-1500));
} finally {
  await b.cleanup();
}
