// Starts s3rver on 127.0.0.1 and a free port (or the one given), storing objects in a folder, and prints
// "s3rver listening on http://127.0.0.1:PORT" once it accepts requests. Run by scripts/s3rver.sh and the
// tests' S3 fixture. Usage: node serve.js DIRECTORY [PORT] [--exit-with-stdin]
// S3RVER_ADDRESS listens on another address instead, for a benchmark whose network namespaces own that address.
'use strict';
const S3rver = require('s3rver');

const [directory, port = '0'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!directory) {
  console.error('usage: node serve.js DIRECTORY [PORT] [--exit-with-stdin]');
  process.exit(2);
}

const address = process.env.S3RVER_ADDRESS || '127.0.0.1';
const server = new S3rver({ address, port: Number(port), directory, silent: true });
server.run().then(
  (bound) => {
    console.log(`s3rver listening on http://${address}:${bound.port}`);
  },
  (error) => {
    console.error(`s3rver could not start: ${error.message}`);
    process.exit(1);
  },
);

// A test process that dies without stopping its server closes this pipe: the server goes with it.
if (process.argv.includes('--exit-with-stdin')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close().finally(() => process.exit(0)));
}
