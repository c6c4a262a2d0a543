// serve-repo.js — a static, read-only HTTP server for the kernel repository, on one address
// and port (the test bridge's), with Node's built-in modules only, so it runs on a bare
// machine. Usage: node serve-repo.js DIR ADDRESS PORT
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');

const [dir, address, portText] = process.argv.slice(2);
if (!dir || !address || !portText) {
  process.stderr.write('usage: node serve-repo.js DIR ADDRESS PORT\n');
  process.exit(2);
}
const root = fs.realpathSync(dir);
const port = Number(portText);

// The file under root a request path names, or null for anything outside it or not a file.
function resolve(urlPath) {
  let rel;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (file !== root && !file.startsWith(root + path.sep)) return null;
  try {
    return fs.statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

const server = http.createServer((req, res) => {
  const file = req.method === 'GET' || req.method === 'HEAD' ? resolve(req.url || '/') : null;
  process.stdout.write(`${new Date().toISOString()} ${req.socket.remoteAddress} ${req.method} ${req.url} ${file ? 200 : 404}\n`);
  if (!file) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
    return;
  }
  const st = fs.statSync(file);
  res.writeHead(200, {
    'Content-Length': st.size,
    'Content-Type': 'application/octet-stream',
    'Last-Modified': st.mtime.toUTCString(),
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  fs.createReadStream(file).pipe(res);
});
server.on('error', (err) => {
  process.stderr.write(`serve-repo.js: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, address, () => {
  process.stdout.write(`serving ${root} on http://${address}:${port}/\n`);
});
process.on('SIGTERM', () => process.exit(0));
