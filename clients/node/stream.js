// Stylizes frames over one stream: node stream.js <target> <style.png> <out-dir> <frame.png>...
// Each result is written to <out-dir>/<sequence>.jpg as it arrives; a frame's own error is printed and the rest go on.
const fs = require('fs');
const path = require('path');
const { connect, statusName } = require('./connect');

const [target, stylePath, outDir, ...framePaths] = process.argv.slice(2);
if (!framePaths.length) {
  console.error('usage: node stream.js <target> <style.png> <out-dir> <frame.png>...');
  process.exit(2);
}

const { client, metadata } = connect(target);

const call = client.StylizeStream(metadata);
call.on('data', (reply) => {
  if (reply.error) {
    console.log(`frame ${reply.sequence}: ${reply.error.status} ${reply.error.message}`);
  } else if (reply.dropped) {
    console.log(`frame ${reply.sequence}: dropped`);
  } else {
    const out = path.join(outDir, `${reply.sequence}.jpg`);
    fs.writeFileSync(out, reply.image);
    console.log(`frame ${reply.sequence}: ${out} ${reply.width}x${reply.height} ${Math.round(reply.timing.total_ms)} ms`);
  }
});
call.on('error', (err) => {
  console.error(`error: ${statusName(err.code)} ${err.details}`);
  process.exit(1);
});
call.on('end', () => client.close());

// The settings first, then the frames; write() returning false means gRPC's flow control wants us to wait.
call.write({ settings: { styles: [{ image: fs.readFileSync(stylePath) }], output_format: 'IMAGE_FORMAT_JPEG',
                         pacing: 'STREAM_PACING_EVERY_FRAME' } });
let next = 0;
function sendFrames() {
  while (next < framePaths.length) {
    const ok = call.write({ frame: { image: fs.readFileSync(framePaths[next]), sequence: next } });
    next += 1;
    if (!ok) {
      call.once('drain', sendFrames);
      return;
    }
  }
  call.end();  // half-close: the server answers the frames it has, then ends the call
}
sendFrames();
