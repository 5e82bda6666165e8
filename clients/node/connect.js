// What both examples need: a StyleTransfer client for a target, the call metadata (a bearer token from
// STYLETRANSFER_TOKEN) and a gRPC status code's name for error messages.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const protoRoot = path.resolve(__dirname, '../../protos');
// google/api/annotations.proto (the proto's HTTP rules) ships with protobufjs, which proto-loader depends on.
const protobufjsRoot = path.dirname(
  require.resolve('protobufjs/package.json', { paths: [require.resolve('@grpc/proto-loader')] }));

function connect(target) {
  const definition = protoLoader.loadSync('styletransfer/v1/style_transfer.proto', {
    includeDirs: [protoRoot, protobufjsRoot], keepCase: true, longs: String, enums: String, defaults: true,
  });
  const { StyleTransfer } = grpc.loadPackageDefinition(definition).styletransfer.v1;
  const client = new StyleTransfer(target, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (process.env.STYLETRANSFER_TOKEN) metadata.set('authorization', `Bearer ${process.env.STYLETRANSFER_TOKEN}`);
  return { client, metadata };
}

function statusName(code) {
  return Object.keys(grpc.status).find((key) => grpc.status[key] === code) || String(code);
}

module.exports = { connect, statusName };
