// Node's TLS servers doing what bench/scripts/serve_tls.luau does: HTTP/2 with HTTP/1.1
// fallback by ALPN (http2.createSecureServer, allowHTTP1), or HTTPS/1.1 only (https).
// Usage: node tls_server.js <h2|https> <port> <cert.pem> <key.pem>
const fs = require("fs");
const [kind, port, cert, key] = process.argv.slice(2);
const options = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
function handle(req, res) {
  if (req.method === "POST") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => res.end(Buffer.concat(chunks)));
  } else {
    res.end("Hello, World!");
  }
}
const server =
  kind === "h2"
    ? require("http2").createSecureServer({ ...options, allowHTTP1: true }, handle)
    : require("https").createServer(options, handle);
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
