#!/usr/bin/env node
// How far rewrites move a model's outputs in onnxruntime (1 thread). The
// reference is the original run with graph optimizations disabled; the
// original with all optimizations shows what onnxruntime's own fusions
// (Conv+BN, Conv+Mul, Conv+Add) move it, the baseline a fold should stay at.
// Every other model is run with optimizations disabled, so only its own
// folds count. Drift = max |y - reference| / max |reference| over all
// outputs and --inputs N seeded random inputs.
// usage: ort_drift.js ORIGINAL.onnx [OTHER.onnx...] [--inputs N] [--dim NAME=VALUE ...] [--max-ratio R]
// With --max-ratio, exits 1 when a model drifts more than R times onnxruntime's
// own fusion and more than 1e-6.
// Prints one line per model: "<path>: <drift>", the original's as "ort-fusion".
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '../.deps/npm/node_modules/onnxruntime-node'));

const models = [];
const dims = {};
let inputs = 4;
let maxRatio = null;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--dim') { const [k, v] = args[++i].split('='); dims[k] = Number(v); }
  else if (args[i] === '--inputs') inputs = Number(args[++i]);
  else if (args[i] === '--max-ratio') maxRatio = Number(args[++i]);
  else models.push(args[i]);
}

let seed = 4321;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff * 2 - 1; };

const session = (m, level) =>
  ort.InferenceSession.create(m, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: level });

(async () => {
  if (models.length < 1) throw new Error('usage: ort_drift.js ORIGINAL.onnx [OTHER.onnx...]');
  const reference = await session(models[0], 'disabled');
  const candidates = [['ort-fusion', await session(models[0], 'all')]];
  for (const m of models.slice(1)) candidates.push([m, await session(m, 'disabled')]);
  const drift = candidates.map(() => 0);
  for (let n = 0; n < inputs; n++) {
    const feeds = {};
    for (const name of reference.inputNames) {
      const meta = reference.inputMetadata.find((m) => m.name === name);
      if (meta.type !== 'float32') throw new Error(`input ${name} is ${meta.type}; only float32 inputs are generated`);
      const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : (dims[d] || 1)));
      feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand), shape);
    }
    const want = await reference.run(feeds);
    for (let c = 0; c < candidates.length; c++) {
      const got = await candidates[c][1].run(feeds);
      for (const name of reference.outputNames) {
        const x = want[name].data, y = got[name].data;
        let maxAbs = 0, maxMag = 0;
        for (let i = 0; i < x.length; i++) { maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i])); maxMag = Math.max(maxMag, Math.abs(x[i])); }
        drift[c] = Math.max(drift[c], maxAbs / (maxMag || 1));
      }
    }
  }
  let high = false;
  for (let c = 0; c < candidates.length; c++) {
    const over = maxRatio !== null && c > 0 && drift[c] > maxRatio * drift[0] && drift[c] > 1e-6;
    high = high || over;
    console.log(`${candidates[c][0]}: ${drift[c].toExponential(2)}${over ? '  HIGH' : ''}`);
  }
  process.exit(high ? 1 : 0);
})().catch((e) => { console.error(String(e.message || e).split('\n')[0]); process.exit(2); });
