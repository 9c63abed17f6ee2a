#!/usr/bin/env node
// Replays a `refold run` directory in onnxruntime: feeds DIR/<input>.pb,
// compares with DIR/<output>.pb and prints the max relative error per output
// (max abs difference / max |onnxruntime output|). Optionally times both.
// usage: ort_check_run.js MODEL DIR [--time N]
'use strict';
const fs = require('fs');
const path = require('path');
const npm = path.join(__dirname, '../.deps/npm/node_modules');
const ort = require(path.join(npm, 'onnxruntime-node'));
const protobuf = require(path.join(npm, 'protobufjs'));
const TensorProto = protobuf.loadSync('/usr/include/onnx/onnx.proto').lookupType('onnx.TensorProto');
const TYPES = { 1: ['float32', Float32Array], 6: ['int32', Int32Array], 7: ['int64', BigInt64Array],
  9: ['bool', Uint8Array], 11: ['float64', Float64Array], 2: ['uint8', Uint8Array], 3: ['int8', Int8Array] };
const fileName = (n) => n.replace(/[^A-Za-z0-9_.-]/g, '_') + '.pb';
function load(file) {
  const t = TensorProto.decode(fs.readFileSync(file));
  const [type, Arr] = TYPES[t.dataType];
  const b = Buffer.from(t.rawData);
  return new ort.Tensor(type, new Arr(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)), t.dims.map(Number));
}
(async () => {
  const [model, dir, flag, count] = process.argv.slice(2);
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = {};
  for (const name of s.inputNames) feeds[name] = load(path.join(dir, fileName(name)));
  const out = await s.run(feeds);
  let worst = 0;
  for (const name of s.outputNames) {
    const want = out[name].data, got = load(path.join(dir, fileName(name))).data;
    let maxAbs = 0, maxMag = 0;
    for (let i = 0; i < want.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(Number(want[i]) - Number(got[i]))); maxMag = Math.max(maxMag, Math.abs(Number(want[i]))); }
    const rel = maxAbs / (maxMag || 1);
    worst = Math.max(worst, rel);
    console.log(`output ${name}: max relative error vs onnxruntime ${rel.toExponential(3)}`);
  }
  if (flag === '--time') {
    const times = [];
    for (let i = 0; i < Number(count || 10); i++) { const t0 = process.hrtime.bigint(); await s.run(feeds); times.push(Number(process.hrtime.bigint() - t0) / 1e6); }
    times.sort((a, b) => a - b);
    console.log(`onnxruntime: median ${times[times.length >> 1].toFixed(1)} ms over ${times.length} runs`);
  }
  process.exit(worst <= 1e-4 ? 0 : 1);
})().catch((e) => { console.error(String(e.message || e).split('\n')[0]); process.exit(2); });
