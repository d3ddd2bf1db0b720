// Calling nextword from Node.js: load the proto, call Predict, then type through a
// PredictStream session one keystroke at a time.
//
//   npm install && node predict.js localhost:50051 "how are yo"
//
// Prints one JSON line per answer, e.g. {"call":"Predict","text":"how are yo","suggestions":["you","your","yourself"]}
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "protos");
const definition = protoLoader.loadSync("nextword/v1/nextword.proto", {
  includeDirs: [PROTO_ROOT], keepCase: true, longs: Number, enums: String, defaults: true,
});
const { NextWord } = grpc.loadPackageDefinition(definition).nextword.v1;

const [address = "localhost:50051", text = "how are yo"] = process.argv.slice(2);
// round_robin spreads calls over every address a DNS name resolves to (see deploy/README.md)
const client = new NextWord(address, grpc.credentials.createInsecure(),
  { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) });
const deadline = () => new Date(Date.now() + 2000);

function predict(text) {
  return new Promise((resolve, reject) =>
    client.Predict({ text, max_suggestions: 3, options: { include_probability: true } }, { deadline: deadline() },
      (error, response) => (error ? reject(error) : resolve(response))));
}

async function typeThroughStream(text) {
  // One request per keystroke, each an edit: {insert: "<the character>"}; answers come in order.
  const call = client.PredictStream();
  const answers = [];
  const done = new Promise((resolve, reject) => {
    call.on("data", (response) => answers.push(response));
    call.on("end", resolve);
    call.on("error", reject);
  });
  [...text].forEach((ch, i) => call.write({ edit: { delete: 0, insert: ch }, max_suggestions: 3, sequence: i + 1 }));
  call.end();
  await done;
  return answers;
}

try {
  const response = await predict(text);
  console.log(JSON.stringify({ call: "Predict", text, model: `${response.model_name} ${response.model_version}`,
    suggestions: response.suggestions.map((s) => s.text), kinds: response.suggestions.map((s) => s.kind) }));
  const answers = await typeThroughStream(text);
  const last = answers[answers.length - 1];
  console.log(JSON.stringify({ call: "PredictStream", keystrokes: answers.length, sequence: last.sequence,
    suggestions: last.suggestions.map((s) => s.text) }));
} catch (error) {
  console.error(`nextword: ${error.code !== undefined ? grpc.status[error.code] : ""} ${error.details || error.message}`);
  process.exitCode = 1;
} finally {
  client.close();
}
