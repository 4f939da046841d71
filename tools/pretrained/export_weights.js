#!/usr/bin/env node
// Exports the MobileNetV2 Keras layers model bundled in the npm package nsfwjs (installed in
// ./node_modules by `npm ci --prefix tools/pretrained`) into OUT_DIR:
//   weights.bin   every weight dequantised to float32 (little-endian), in manifest order
//   index.json    [{name, shape, offset, count, quantization}] (offset and count in floats)
//   topology.json the Keras model topology (layer names, paddings, strides) as shipped
//   package.json  the nsfwjs package.json, for provenance
// Usage: node export_weights.js OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');

async function loadBundledModel() {
  // The package's own export: modelJson() and weightBundles[] resolve to the browserified
  // modules holding model.json and the base64 of the weight shard.
  const { MobileNetV2Model } = require('nsfwjs/models/mobilenet_v2');
  const unwrap = (m) => (m && m.default !== undefined ? m.default : m);
  const modelJson = unwrap(await MobileNetV2Model.modelJson());
  const shards = [];
  for (const bundle of MobileNetV2Model.weightBundles)
    shards.push(Buffer.from(unwrap(await bundle()), 'base64'));
  return { modelJson, data: Buffer.concat(shards) };
}

// TF.js stores uint8/uint16 weights as q with value = min + scale * q (tfjs-core io/io_utils).
function dequantise(spec, bytes, offset, count) {
  const out = new Float32Array(count);
  const q = spec.quantization;
  if (!q) {
    if (spec.dtype !== 'float32') throw new Error(`${spec.name}: dtype ${spec.dtype}`);
    for (let i = 0; i < count; i++) out[i] = bytes.readFloatLE(offset + 4 * i);
    return { values: out, size: 4 * count };
  }
  if (q.dtype === 'uint8') {
    for (let i = 0; i < count; i++) out[i] = q.min + q.scale * bytes[offset + i];
    return { values: out, size: count };
  }
  if (q.dtype === 'uint16') {
    for (let i = 0; i < count; i++) out[i] = q.min + q.scale * bytes.readUInt16LE(offset + 2 * i);
    return { values: out, size: 2 * count };
  }
  throw new Error(`${spec.name}: quantisation ${q.dtype} not handled`);
}

async function main() {
  const outDir = process.argv[2];
  if (!outDir) {
    console.error('usage: node export_weights.js OUT_DIR');
    process.exit(2);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const { modelJson, data } = await loadBundledModel();
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const index = [];
  const chunks = [];
  let byteOffset = 0;
  let floatOffset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const { values, size } = dequantise(spec, data, byteOffset, count);
    byteOffset += size;
    index.push({ name: spec.name, shape: spec.shape, offset: floatOffset, count,
                 quantization: spec.quantization || null });
    chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    floatOffset += count;
  }
  if (byteOffset !== data.length)
    throw new Error(`weights use ${byteOffset} of ${data.length} bytes`);
  if (require('os').endianness() !== 'LE') throw new Error('big-endian host');
  fs.writeFileSync(path.join(outDir, 'weights.bin'), Buffer.concat(chunks));
  fs.writeFileSync(path.join(outDir, 'index.json'), JSON.stringify(index, null, 1));
  fs.writeFileSync(path.join(outDir, 'topology.json'),
                   JSON.stringify(modelJson.modelTopology, null, 1));
  // nsfwjs's "exports" hides its package.json: walk up from its entry point instead.
  let pkgDir = path.dirname(require.resolve('nsfwjs'));
  while (!fs.existsSync(path.join(pkgDir, 'package.json')) ||
         JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'))).name !== 'nsfwjs')
    pkgDir = path.dirname(pkgDir);
  fs.copyFileSync(path.join(pkgDir, 'package.json'), path.join(outDir, 'package.json'));
  console.log(`export_weights: ${index.length} arrays, ${floatOffset} floats -> ${outDir}`);
}

main().catch((e) => {
  console.error(`export_weights: ${e.stack || e}`);
  process.exit(1);
});
