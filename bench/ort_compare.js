#!/usr/bin/env node
// Runs two models in onnxruntime on the same seeded random inputs and prints
// whether their outputs are identical, with the max abs and relative error.
// usage: ort_compare.js A.onnx B.onnx [--dim NAME=VALUE ...] [--tol REL]
// Exit status 0 when the outputs are identical, or within REL (max abs
// difference / max |A output|) when --tol is given.
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '../.deps/npm/node_modules/onnxruntime-node'));

const [a, b, ...rest] = process.argv.slice(2);
const dims = {};
let tol = null;
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--dim') { const [k, v] = rest[++i].split('='); dims[k] = Number(v); }
  else if (rest[i] === '--tol') tol = Number(rest[++i]);
}

let seed = 12345;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff * 2 - 1; };

(async () => {
  const opts = { intraOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const sa = await ort.InferenceSession.create(a, opts);
  const sb = await ort.InferenceSession.create(b, opts);
  const feeds = {};
  for (const name of sa.inputNames) {
    const meta = sa.inputMetadata.find((m) => m.name === name);
    const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : (dims[d] || 1)));
    const n = shape.reduce((x, y) => x * y, 1);
    if (meta.type !== 'float32') throw new Error(`input ${name} is ${meta.type}; only float32 inputs are generated`);
    feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, rand), shape);
  }
  const ra = await sa.run(feeds);
  const rb = await sb.run(feeds);
  let identical = true, withinTol = true;
  for (const name of sa.outputNames) {
    const x = ra[name].data, y = rb[name].data;
    let maxAbs = 0, maxMag = 0;
    for (let i = 0; i < x.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i])); maxMag = Math.max(maxMag, Math.abs(x[i])); }
    const same = Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    identical = identical && same;
    if (tol !== null && !(maxAbs / (maxMag || 1) <= tol)) withinTol = false;
    console.log(`output ${name}: ${same ? 'identical' : 'differs'}, max abs ${maxAbs.toExponential(3)}, relative ${(maxAbs / (maxMag || 1)).toExponential(3)}`);
  }
  process.exit((tol === null ? identical : withinTol) ? 0 : 1);
})().catch((e) => { console.error(String(e.message || e).split('\n')[0]); process.exit(2); });
