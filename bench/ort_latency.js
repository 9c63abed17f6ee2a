#!/usr/bin/env node
// Median onnxruntime latency (1 thread, all graph optimizations) of several
// models, measured interleaved so that machine noise hits all alike.
// usage: ort_latency.js MODEL... [--runs N]
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '../.deps/npm/node_modules/onnxruntime-node'));
(async () => {
  const args = process.argv.slice(2);
  let runs = 30;
  const models = [];
  for (let i = 0; i < args.length; i++) if (args[i] === '--runs') runs = Number(args[++i]); else models.push(args[i]);
  const sessions = [];
  for (const m of models) sessions.push(await ort.InferenceSession.create(m, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' }));
  const feeds = sessions.map((s) => {
    const f = {};
    for (const name of s.inputNames) {
      const meta = s.inputMetadata.find((m) => m.name === name);
      const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
      f[name] = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random() - 0.5), shape);
    }
    return f;
  });
  const times = models.map(() => []);
  for (let r = 0; r < runs + 3; r++)
    for (let i = 0; i < sessions.length; i++) {
      const t0 = process.hrtime.bigint();
      await sessions[i].run(feeds[i]);
      if (r >= 3) times[i].push(Number(process.hrtime.bigint() - t0) / 1e6); // 3 warm-up rounds
    }
  models.forEach((m, i) => {
    const t = times[i].sort((a, b) => a - b);
    console.log(`${path.basename(m)}: median ${t[t.length >> 1].toFixed(2)} ms`);
  });
})().catch((e) => { console.error(String(e.message || e).split('\n')[0]); process.exit(2); });
