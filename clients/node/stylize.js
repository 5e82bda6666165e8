// Stylizes one image with one style: node stylize.js <target> <content.png> <style.png> <out.png> [alpha]
const fs = require('fs');
const { connect, statusName } = require('./connect');

const [target, contentPath, stylePath, outPath, alpha] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: node stylize.js <target> <content.png> <style.png> <out.png> [alpha]');
  process.exit(2);
}

const { client, metadata } = connect(target);

const request = { content: fs.readFileSync(contentPath), styles: [{ image: fs.readFileSync(stylePath) }] };
if (alpha !== undefined) request.alpha = Number(alpha);

client.Stylize(request, metadata, { deadline: Date.now() + 60_000 }, (err, response) => {
  client.close();
  if (err) {
    console.error(`error: ${statusName(err.code)} ${err.details}`);
    process.exit(1);
  }
  fs.writeFileSync(outPath, response.image);
  console.log(`wrote ${outPath} ${response.width}x${response.height} ${response.mime_type}`);
});
