#!/usr/bin/env node
// onnxruntime's own per-node profile of a model (1 thread, all graph
// optimizations): mean time per node over N runs, by op type and the top K
// nodes, to set beside bench/c_profile.py.
// usage: ort_profile.js MODEL [--runs N] [--top K]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require(path.join(__dirname, '../.deps/npm/node_modules/onnxruntime-node'));
(async () => {
  const args = process.argv.slice(2);
  let runs = 20, top = 25, model;
  for (let i = 0; i < args.length; i++)
    if (args[i] === '--runs') runs = Number(args[++i]);
    else if (args[i] === '--top') top = Number(args[++i]);
    else model = args[i];
  const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-')), 'p');
  const s = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    enableProfiling: true, profileFilePrefix: prefix });
  const feeds = {};
  for (const name of s.inputNames) {
    const meta = s.inputMetadata.find((m) => m.name === name);
    const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
    feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random() - 0.5), shape);
  }
  for (let r = 0; r < 3; r++) await s.run(feeds);
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < runs; r++) await s.run(feeds);
  const wall = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
  s.endProfiling();
  const dir = path.dirname(prefix);
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) throw new Error('onnxruntime wrote no profile');
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  // Node events of the last `runs` runs (the warm-up ones come first).
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const perRun = nodes.length / (runs + 3);
  const last = nodes.slice(nodes.length - perRun * runs);
  const byNode = new Map(), byType = new Map(), typeNodes = new Map();
  for (const e of last) {
    const name = e.name.replace(/_kernel_time$/, ''), type = e.args.op_name;
    const ms = e.dur / 1000 / runs;
    if (!byNode.has(name)) typeNodes.set(type, (typeNodes.get(type) || 0) + 1);
    const n = byNode.get(name) || { type, ms: 0 };
    n.ms += ms;
    byNode.set(name, n);
    byType.set(type, (byType.get(type) || 0) + ms);
  }
  const total = [...byType.values()].reduce((a, b) => a + b, 0);
  console.log(`${path.basename(model)}: ${total.toFixed(2)} ms in ${perRun} nodes per run (wall ${wall.toFixed(2)} ms, mean of ${runs} runs)`);
  for (const [type, ms] of [...byType].sort((a, b) => b[1] - a[1]))
    console.log(`  ${type.padEnd(28)} ${ms.toFixed(3).padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)}% ${String(typeNodes.get(type)).padStart(5)} nodes`);
  console.log(`top ${top} nodes:`);
  for (const [name, n] of [...byNode].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
    console.log(`  ${n.ms.toFixed(3).padStart(7)} ms ${(100 * n.ms / total).toFixed(1).padStart(5)}%  ${n.type.padEnd(22)} ${name.slice(0, 90)}`);
  fs.rmSync(path.dirname(prefix), { recursive: true, force: true });
})().catch((e) => { console.error(String(e.message || e).split('\n')[0]); process.exit(2); });
