// Stylizes one image with one style: node stylize.js <target> <content.png> <style.png> <out.png> [alpha]
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, contentPath, stylePath, outPath, alpha] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node stylize.js <target> <content.png> <style.png> <out.png> [alpha]');
  process.exit(2);
}

const protoRoot = path.resolve(__dirname, '../../protos');
// google/api/annotations.proto (the proto's HTTP rules) ships with protobufjs, which proto-loader depends on.
const protobufjsRoot = path.dirname(
  require.resolve('protobufjs/package.json', { paths: [require.resolve('@grpc/proto-loader')] }));
const definition = protoLoader.loadSync('styletransfer/v1/style_transfer.proto', {
  includeDirs: [protoRoot, protobufjsRoot], keepCase: true, longs: String, enums: String, defaults: true,
});
const { StyleTransfer } = grpc.loadPackageDefinition(definition).styletransfer.v1;
const client = new StyleTransfer(target, grpc.credentials.createInsecure());

const metadata = new grpc.Metadata();
if (process.env.STYLETRANSFER_TOKEN) metadata.set('authorization', `Bearer ${process.env.STYLETRANSFER_TOKEN}`);

const request = { content: fs.readFileSync(contentPath), styles: [{ image: fs.readFileSync(stylePath) }] };
if (alpha !== undefined) request.alpha = Number(alpha);

client.Stylize(request, metadata, { deadline: Date.now() + 60_000 }, (err, response) => {
  client.close();
  if (err) {
    const name = Object.keys(grpc.status).find((key) => grpc.status[key] === err.code) || String(err.code);
    console.error(`error: ${name} ${err.details}`);
    process.exit(1);
  }
  fs.writeFileSync(outPath, response.image);
  console.log(`wrote ${outPath} ${response.width}x${response.height} ${response.mime_type}`);
});
