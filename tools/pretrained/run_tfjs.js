#!/usr/bin/env node
// Runs the original nsfwjs MobileNetV2 with TensorFlow.js (pure-JS CPU backend) on raw inputs:
// the reference that tests/tools/test_pretrained.py compares the converted torch model with.
// Usage: node run_tfjs.js INPUT.bin N OUT_DIR
//   INPUT.bin  N x 224 x 224 x 3 float32 little-endian, NHWC, nsfwjs's scaling (pixel / 255)
//   OUT_DIR    features.bin (N x 7 x 7 x 1280, the out_relu layer, NHWC),
//              block_10.bin (N x 14 x 14 x 96, block_10_project_BN) and
//              probabilities.bin (N x 5, the softmax of dense_3), all float32
// Weights are decoded by TF.js itself (tf.io.decodeWeights dequantises them), independently of
// export_weights.js.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [input, nText, outDir] = process.argv.slice(2);
  const n = Number(nText);
  if (!input || !(n > 0) || !outDir) {
    console.error('usage: node run_tfjs.js INPUT.bin N OUT_DIR');
    process.exit(2);
  }
  await tf.setBackend('cpu');
  const { MobileNetV2Model } = require('nsfwjs/models/mobilenet_v2');
  const unwrap = (m) => (m && m.default !== undefined ? m.default : m);
  const modelJson = unwrap(await MobileNetV2Model.modelJson());
  const shards = [];
  for (const bundle of MobileNetV2Model.weightBundles)
    shards.push(Buffer.from(unwrap(await bundle()), 'base64'));
  const data = Buffer.concat(shards);
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
  }));
  const both = tf.model({ inputs: model.inputs,
                          outputs: [model.getLayer('out_relu').output,
                                    model.getLayer('block_10_project_BN').output,
                                    model.outputs[0]] });
  const raw = fs.readFileSync(input);
  const size = 224 * 224 * 3;
  if (raw.length !== 4 * n * size) throw new Error(`${input}: ${raw.length} bytes`);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, n * size), [n, 224, 224, 3]);
  const [features, block10, probabilities] = both.predict(x);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'features.bin'), Buffer.from((await features.data()).buffer));
  fs.writeFileSync(path.join(outDir, 'block_10.bin'), Buffer.from((await block10.data()).buffer));
  fs.writeFileSync(path.join(outDir, 'probabilities.bin'),
                   Buffer.from((await probabilities.data()).buffer));
  console.log(`run_tfjs: ${n} images, features ${features.shape}, probabilities ` +
              `${probabilities.shape}, backend ${tf.getBackend()}`);
}

main().catch((e) => {
  console.error(`run_tfjs: ${e.stack || e}`);
  process.exit(1);
});
