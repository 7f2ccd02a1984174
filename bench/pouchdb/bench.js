// bench/pouchdb/bench.js - the PouchDB baseline of the sync benchmarks:
// pouchdb@9 with pouchdb-adapter-memory on both ends, express-pouchdb@4 on
// 127.0.0.1, default replication settings, every byte counted by the same
// relay as branchsync's (tests/faultproxy, HTTP headers included).
// Prints one JSON object per figure on stdout (scripts/bench.sh pairs them
// with branchsync's). Not a test. Usage: node bench.js WORKDIR
'use strict';
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const express = require('express');
const PouchDB = require('pouchdb').plugin(require('pouchdb-adapter-memory'));

const MemPouch = PouchDB.defaults({ adapter: 'memory' });
const MEMBERS = +(process.env.MEMBERS || 20000), EDITS = 1000, RUNS = 3;
const work = fs.mkdtempSync(path.join(process.argv[2] || '/tmp', 'bench-pouchdb.'));
const proxyBin = process.env.FAULTPROXY_BIN;
let proxySeq = 0;
// PouchDB names a replication by its URLs: every relay listens on this one
// port, so that a replication finds its checkpoint again, as in life.
let relayPort = 0;

// the members of benchsync_members_csv (bench/benchsync.c): same generator
const M64 = (1n << 64n) - 1n;
function mix(x) {
  x = (x + 0x9e3779b97f4a7c15n) & M64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M64;
  return x ^ (x >> 31n);
}
const surnames = [...'王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹'];
const given = [...'伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰飞鹏婷宇浩欣佳俊晨雪琳博文斌'];
const jobs = ['', 'farmer', 'worker', 'student', 'teacher', 'driver', 'cook',
  'nurse', 'welder', 'shop owner', 'electrician'];
const cities = [...'深圳广州东莞上海杭州苏州北京厦门'].reduce((a, c, i, s) =>
  (i % 2 ? a : a.concat(s[i] + s[i + 1])), []);
const pick = (list, x) => list[Number(x % BigInt(list.length))];
function member(i) {
  const a = mix(BigInt(i)), b = mix(a), c = mix(b);
  const away = b % 4n === 0n;
  const two = (n) => String(n).padStart(2, '0');
  return {
    _id: require('crypto').randomBytes(16).toString('hex'),
    branch_id: 'b1',
    name: pick(surnames, a) + pick(given, a >> 8n) +
      ((a >> 16n) % 3n ? pick(given, a >> 24n) : ''),
    gender: (a >> 32n) % 2n ? 'female' : 'male',
    birth_date: `${1985 + Number((b >> 8n) % 24n)}-${two(1 + Number((b >> 16n) % 12n))}-${two(1 + Number((b >> 24n) % 28n))}`,
    phone: `1${3 + Number((b >> 32n) % 7n)}${String(c % 1000000000n).padStart(9, '0')}`,
    status: away ? 'away' : 'active',
    occupation: pick(jobs, c >> 32n),
    away_city: away ? pick(cities, c >> 40n) : '',
  };
}

// A fresh counting relay in front of the server; stop() gives the bytes.
async function relay(target) {
  const n = proxySeq++;
  const pf = path.join(work, `p${n}.port`), cf = path.join(work, `p${n}.count`);
  const p = spawn(proxyBin, ['--listen', `127.0.0.1:${relayPort}`, '--port-file', pf,
    '--target', `127.0.0.1:${target}`, '--count-file', cf], { stdio: 'inherit' });
  const t0 = Date.now();
  for (;;) {
    if (fs.existsSync(pf)) {
      const port = parseInt(fs.readFileSync(pf, 'utf8'), 10);
      if (port > 0) {
        return {
          url: `http://127.0.0.1:${port}/members`,
          stop: () => new Promise((resolve, reject) => {
            p.on('exit', (code) => {
              if (code !== 0) return reject(new Error(`faultproxy exit ${code}`));
              const m = /up (\d+)\ndown (\d+)/.exec(fs.readFileSync(cf, 'utf8'));
              resolve(Number(m[1]) + Number(m[2]));
            });
            p.kill('SIGTERM');
          }),
        };
      }
    }
    if (Date.now() - t0 > 10000) throw new Error('faultproxy did not start');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function median(v) {
  const s = [...v].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function figure(key, fig, value, unit) {
  console.log(JSON.stringify({ figure: fig, value, unit, baseline: null,
    baseline_name: '', ratio: null, goal: 'baseline', ok: true, pouchdb: key }));
}

async function main() {
  if (!proxyBin) throw new Error('set FAULTPROXY_BIN');
  const app = express();
  app.use('/', require('express-pouchdb')(MemPouch, { inMemoryConfig: true,
    mode: 'minimumForPouchDB', logPath: path.join(work, 'log.txt') }));
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = server.address().port;
  relayPort = await new Promise((resolve) => {
    const s = require('net').createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const remote = new MemPouch('members');
  const docs = [];
  for (let i = 0; i < MEMBERS; i++) docs.push(member(i));
  for (let i = 0; i < MEMBERS; i += 1000) await remote.bulkDocs(docs.slice(i, i + 1000));

  // (a) replication of the 20,000 documents to a fresh client
  const times = [], bytes = [];
  let local;
  for (let k = 0; k < RUNS; k++) {
    local = new MemPouch(`fresh${k}`);
    const r = await relay(port);
    const t0 = process.hrtime.bigint();
    const res = await PouchDB.replicate(r.url, local);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    bytes.push(await r.stop());
    if (res.docs_written !== MEMBERS) throw new Error(`pulled ${res.docs_written}`);
    if (k < RUNS - 1) await local.destroy();
  }
  figure('pull_s', 'PouchDB: replication of 20,000 documents to a fresh client: time',
    median(times), 's');
  figure('pull_bytes', 'PouchDB: replication of 20,000 documents: wire bytes',
    median(bytes), 'B');

  // the client pushes once with nothing to send, so that the measured
  // pushes start from a checkpoint as branchsync's do
  let r = await relay(port);
  await PouchDB.replicate(local, r.url);
  await r.stop();

  // (b) push of one one-cell edit
  const one = [];
  for (let k = 0; k < RUNS; k++) {
    const d = await local.get(docs[k]._id);
    d.phone = `1390000000${k}`;
    await local.put(d);
    r = await relay(port);
    const res = await PouchDB.replicate(local, r.url);
    one.push(await r.stop());
    if (res.docs_written !== 1) throw new Error(`pushed ${res.docs_written}`);
  }
  figure('push1_bytes', 'PouchDB: push of 1 one-cell edit: wire bytes', median(one), 'B');

  // (c) push of 1,000 one-cell edits, each its own put
  const many = [];
  for (let k = 0; k < RUNS; k++) {
    for (let i = 0; i < EDITS; i++) {
      const d = await local.get(docs[i]._id);
      d.phone = `137${String(k * 100000 + i).padStart(8, '0')}`;
      await local.put(d);
    }
    r = await relay(port);
    const res = await PouchDB.replicate(local, r.url);
    many.push(await r.stop());
    if (res.docs_written !== EDITS) throw new Error(`pushed ${res.docs_written}`);
  }
  figure('push1000_bytes', 'PouchDB: push of 1,000 one-cell edits: wire bytes',
    median(many), 'B');

  // (d) a two-way sync with nothing to do
  r = await relay(port);
  await local.sync(r.url); // settles the pull side's checkpoint
  await r.stop();
  const noop = [];
  for (let k = 0; k < RUNS; k++) {
    r = await relay(port);
    // a fresh handle on the server, as a new sync run of an app has
    const res = await local.sync(new PouchDB(r.url));
    noop.push(await r.stop());
    if (process.env.DEBUG) console.error(JSON.stringify(res).slice(0, 400));
    if (res.push.docs_written || res.pull.docs_written)
      throw new Error(`not a no-op: ${JSON.stringify(res)}`);
  }
  figure('noop_bytes', 'PouchDB: no-op two-way sync: wire bytes', median(noop), 'B');
  server.close();
}

main().then(() => {
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(0);
}, (e) => {
  console.error(`bench: pouchdb: ${e.stack || e}`);
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(1);
});
