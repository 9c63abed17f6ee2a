#!/usr/bin/env node
// onnxruntime's offline optimization of one model, as a build step would run
// it: load, optimize (graphOptimizationLevel basic), write the result.
// usage: ort_offline_optimize.js IN.onnx OUT.onnx
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '../.deps/npm/node_modules/onnxruntime-node'));
(async () => {
  const [input, output] = process.argv.slice(2);
  await ort.InferenceSession.create(input, {
    graphOptimizationLevel: 'basic',
    optimizedModelFilePath: output,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
})().catch((e) => { console.error(e.message); process.exit(1); });
