#!/usr/bin/env node
// Round-trip proof over ONNX's backend test models.
//
// For every model.onnx: `refold -O0` must write a model that passes
// onnx::checker (when the original does) and computes exactly the same
// outputs as the original in onnxruntime on the shipped inputs. Where
// onnxruntime cannot run the original, the two ModelProtos are compared
// after normalization (refold-translate --compare-onnx). Every imported model
// must also print as MLIR and parse back to the same text (refold-opt).
//
// usage: roundtrip.js --bin BUILD/bin --data DIR --out DIR [--filter S] [--jobs N]
//                     [--opt O2 --tol 1e-5]
// With --opt, the models are optimized instead of round-tripped: outputs must
// agree within --tol (max abs difference / max |original output|), and models
// onnxruntime cannot run must still optimize and pass the checker.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');
const { execFile } = require('child_process');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const root = path.resolve(__dirname, '../..');
const npm = path.join(root, '.deps/npm/node_modules');
const ort = require(path.join(npm, 'onnxruntime-node'));
const protobuf = require(path.join(npm, 'protobufjs'));

const bin = args.bin || path.join(root, 'build/bin');
const dataDir = args.data || '/usr/share/libonnx-testdata/data';
const outDir = args.out || fs.mkdtempSync(path.join(os.tmpdir(), 'refold-roundtrip-'));
const jobs = Number(args.jobs || os.cpus().length);
const optLevel = args.opt || 'O0';
const tol = args.tol === undefined ? null : Number(args.tol);
fs.mkdirSync(outDir, { recursive: true });

const protoRoot = protobuf.loadSync('/usr/include/onnx/onnx.proto');
const TensorProto = protoRoot.lookupType('onnx.TensorProto');
const ModelProto = protoRoot.lookupType('onnx.ModelProto');

function run(file, argv) {
  return new Promise((resolve) => {
    execFile(file, argv, { maxBuffer: 1 << 30, encoding: 'latin1' }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code || 1) : 0, stdout, stderr: String(stderr).trim() });
    });
  });
}

const TYPES = {
  1: ['float32', Float32Array], 2: ['uint8', Uint8Array], 3: ['int8', Int8Array],
  4: ['uint16', Uint16Array], 5: ['int16', Int16Array], 6: ['int32', Int32Array],
  7: ['int64', BigInt64Array], 9: ['bool', Uint8Array], 10: ['float16', Uint16Array],
  11: ['float64', Float64Array], 12: ['uint32', Uint32Array], 13: ['uint64', BigUint64Array],
};

function tensorFromProto(t) {
  const dims = t.dims.map(Number);
  if (t.dataType === 8) return new ort.Tensor('string', t.stringData.map((b) => Buffer.from(b).toString('utf8')), dims);
  const entry = TYPES[t.dataType];
  if (!entry) throw new Error(`unsupported input type ${t.dataType}`);
  const [name, Arr] = entry;
  const count = dims.reduce((a, b) => a * b, 1);
  let arr;
  if (t.rawData && t.rawData.length) {
    const copy = Buffer.from(t.rawData); // aligned copy
    arr = new Arr(copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.length));
  } else {
    arr = new Arr(count);
    const src = t.dataType === 1 ? t.floatData : t.dataType === 11 ? t.doubleData
      : t.dataType === 7 ? t.int64Data : (t.dataType === 12 || t.dataType === 13) ? t.uint64Data : t.int32Data;
    for (let i = 0; i < count; i++) arr[i] = (Arr === BigInt64Array || Arr === BigUint64Array) ? BigInt(src[i].toString()) : Number(src[i]);
  }
  return new ort.Tensor(name, arr, dims);
}

function sameTensor(a, b) {
  if (a.type !== b.type || a.dims.join(',') !== b.dims.join(',')) return false;
  if (a.type === 'string') return JSON.stringify(a.data) === JSON.stringify(b.data);
  if (tol !== null && (a.type === 'float32' || a.type === 'float64')) {
    let maxAbs = 0, maxMag = 0;
    for (let i = 0; i < a.data.length; i++) {
      const x = a.data[i], y = b.data[i];
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (!Number.isFinite(x) || !Number.isFinite(y)) { if (x !== y) return false; continue; }
      maxAbs = Math.max(maxAbs, Math.abs(x - y)); maxMag = Math.max(maxMag, Math.abs(x));
    }
    return maxAbs <= tol * (maxMag || 1);
  }
  const x = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.equals(y);
}

// Runs both models on each shipped data set; returns null when identical.
async function compareInOrt(original, exported, dir, inputInfo) {
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 4 };
  const a = await ort.InferenceSession.create(original, opts); // throws: not runnable
  let b;
  try { b = await ort.InferenceSession.create(exported, opts); } catch (e) { return `exported model does not load: ${String(e.message).split('\n')[0]}`; }
  const sets = fs.readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort();
  if (!sets.length) throw new Error('no test data');
  for (const set of sets) {
    const files = fs.readdirSync(path.join(dir, set)).filter((f) => /^input_\d+\.pb$/.test(f))
      .sort((x, y) => Number(x.match(/\d+/)[0]) - Number(y.match(/\d+/)[0]));
    const feeds = {};
    files.forEach((f, i) => {
      const t = TensorProto.decode(fs.readFileSync(path.join(dir, set, f)));
      const name = inputInfo[i];
      feeds[name] = tensorFromProto(t);
    });
    const ra = await a.run(feeds); // throws: not runnable
    let rb;
    try { rb = await b.run(feeds); } catch (e) { return `exported model fails to run: ${String(e.message).split('\n')[0]}`; }
    for (const name of a.outputNames) {
      if (!(name in rb)) return `output '${name}' missing`;
      if (!sameTensor(ra[name], rb[name])) return `output '${name}' differs on ${set}`;
    }
  }
  return null;
}

async function checkModel(model) {
  const rel = path.relative(dataDir, path.dirname(model));
  const tag = rel.replace(/[\\/]/g, '__');
  const out = path.join(outDir, tag + '.onnx');
  const mlir1 = path.join(outDir, tag + '.mlir');
  const mlir2 = path.join(outDir, tag + '.2.mlir');
  const r = await run(path.join(bin, 'refold'), ['-' + optLevel, model, '-o', out]);
  if (r.code !== 0) return { rel, fail: `refold failed: ${r.stderr.split('\n')[0]}` };

  // MLIR print/parse round-trip of the imported model.
  const imp = await run(path.join(bin, 'refold-translate'), ['--import-onnx', model, '-o', mlir1]);
  if (imp.code !== 0) return { rel, fail: `import to MLIR failed: ${imp.stderr.split('\n')[0]}` };
  const opt = await run(path.join(bin, 'refold-opt'), [mlir1, '-o', mlir2]);
  if (opt.code !== 0) return { rel, fail: `refold-opt cannot parse the printed IR: ${opt.stderr.split('\n')[0]}` };
  if (fs.readFileSync(mlir1, 'latin1').trimEnd() !== fs.readFileSync(mlir2, 'latin1').trimEnd()) return { rel, fail: 'MLIR print -> parse -> print differs' };
  fs.unlinkSync(mlir1); fs.unlinkSync(mlir2);

  const [ca, cb] = await Promise.all([
    run(path.join(bin, 'refold-translate'), ['--check-onnx', model]),
    run(path.join(bin, 'refold-translate'), ['--check-onnx', out])]);
  if (ca.code === 0 && cb.code !== 0) return { rel, fail: `exported model fails onnx::checker: ${cb.stdout.trim()}` };

  const m = ModelProto.decode(fs.readFileSync(model));
  const inits = new Set(m.graph.initializer.map((t) => t.name));
  const inputInfo = m.graph.input.filter((v) => !inits.has(v.name)).map((v) => v.name);
  let how;
  try {
    const diff = await compareInOrt(model, out, path.dirname(model), inputInfo);
    if (diff) return { rel, fail: diff };
    how = 'ort';
  } catch (e) {
    const cmp = optLevel === 'O0' ? await run(path.join(bin, 'refold-translate'), ['--compare-onnx', model, out]) : { code: 0 };
    if (cmp.code !== 0) return { rel, fail: `onnxruntime cannot run the original (${String(e.message).split('\n')[0].slice(0, 120)}) and ${cmp.stdout.trim()}` };
    how = 'proto';
    var why = String(e.message).split('\n')[0].replace(/node with name '.*'/, 'node').slice(0, 100);
  }
  fs.unlinkSync(out);
  return { rel, how, why, checker: ca.code === 0 };
}

(async () => {
  const models = [];
  for (const cat of ['node', 'pytorch-converted', 'pytorch-operator', 'simple']) {
    const d = path.join(dataDir, cat);
    if (!fs.existsSync(d)) continue;
    for (const name of fs.readdirSync(d).sort()) {
      const m = path.join(d, name, 'model.onnx');
      if (fs.existsSync(m) && (!args.filter || m.includes(args.filter))) models.push(m);
    }
  }
  const results = [];
  let next = 0;
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (next < models.length) {
      const m = models[next++];
      results.push(await checkModel(m));
    }
  }));
  results.sort((a, b) => a.rel.localeCompare(b.rel));
  const failed = results.filter((r) => r.fail);
  const byOrt = results.filter((r) => r.how === 'ort').length;
  const byProto = results.filter((r) => r.how === 'proto');
  for (const r of failed) console.log(`FAIL ${r.rel}: ${r.fail}`);
  if (args.verbose) for (const r of byProto) console.log(`proto-compared ${r.rel}: ${r.why}`);
  const uncheckable = results.filter((r) => !r.fail && !r.checker).length;
  const passed = results.length - failed.length;
  if (optLevel === 'O0')
    console.log(`round-trip: ${passed}/${results.length} models pass (${byOrt} identical outputs in onnxruntime, ` +
      `${byProto.length} identical ModelProtos after normalization where onnxruntime cannot run the original), ${failed.length} failed; ` +
      `onnx::checker passes ${results.length - uncheckable} originals and each of their exports`);
  else
    console.log(`-${optLevel}: ${passed}/${results.length} models pass (${byOrt} with onnxruntime outputs within ${tol} of the original's, ` +
      `${byProto.length} optimized and checker-clean where onnxruntime cannot run the original), ${failed.length} failed`);
  console.log(`${passed} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
