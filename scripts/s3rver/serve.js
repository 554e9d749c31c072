// Starts s3rver on 127.0.0.1 and a free port (or the one given), storing objects in a folder, and prints
// "s3rver listening on http://127.0.0.1:PORT" once it accepts requests. Run by scripts/s3rver.sh and the
// tests' S3 fixture. Usage: node serve.js DIRECTORY [PORT] [--exit-with-stdin]
// S3RVER_ADDRESS listens on another address instead, for a benchmark whose network namespaces own that address.
'use strict';
const path = require('path');
const fs = require('fs-extra');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');

// s3rver 3.7.1 keeps keys as nested folders and removes a folder when a delete empties it. A put into the same
// folder at that moment opens its file in a folder that is gone: the write stream's error has no listener and
// ends this whole process (every later request: connection refused). Open the file here, synchronously, making
// the folder again until the open wins, so the stream it returns never fails to open.
const createWriteStream = fs.createWriteStream;
fs.createWriteStream = (file, options) => {
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirpSync(path.dirname(file));
      const fd = fs.openSync(file, 'w');
      return createWriteStream(file, { ...options, fd });
    } catch (error) {
      if (error.code !== 'ENOENT' || attempt >= 100) throw error;
    }
  }
};

// The other side of that race: the delete's folder clean-up finds the folder refilled (ENOTEMPTY) or already
// removed (ENOENT) and answers 500, though the object itself was deleted. A folder left behind is harmless.
const deleteObject = FilesystemStore.prototype.deleteObject;
FilesystemStore.prototype.deleteObject = async function (bucket, key) {
  try {
    await deleteObject.call(this, bucket, key);
  } catch (error) {
    if (error.code !== 'ENOTEMPTY' && error.code !== 'ENOENT') throw error;
  }
};

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

// Anything else s3rver leaves unhandled (a stream error without a listener, a rejected promise) would end the
// process and fail every test after it with "connection refused": say what it was, on stderr, and serve on.
process.on('uncaughtException', (error) => console.error(`s3rver: uncaught: ${error.stack || error}`));
process.on('unhandledRejection', (error) => console.error(`s3rver: unhandled rejection: ${(error && error.stack) || error}`));

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close().finally(() => process.exit(0)));
}
