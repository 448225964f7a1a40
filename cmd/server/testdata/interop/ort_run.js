// ONNX Runtime side of cmd/server's interop test (interop_test.go):
//
//   node ort_run.js MODEL.onnx INPUTS.f32 OUT.f32
//
// runs the model's "input" on the little-endian float32 rows of INPUTS (as many as the model's width divides) on
// ONNX Runtime's CPU provider and writes its "probabilities" output to OUT as little-endian float32. onnxruntime-node
// is found through NODE_PATH.
const fs = require('fs');
const ort = require('onnxruntime-node');

(async () => {
  const [model, inputs, out] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const buf = fs.readFileSync(inputs);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const width = 784;
  const result = await session.run({ input: new ort.Tensor('float32', data, [data.length / width, width]) });
  const probs = result.probabilities.data;
  fs.writeFileSync(out, Buffer.from(probs.buffer, probs.byteOffset, probs.byteLength));
  console.log(JSON.stringify({ model, onnxruntime: ort.env.versions.node, rows: data.length / width }));
})().catch((e) => { console.error(e); process.exit(1); });
