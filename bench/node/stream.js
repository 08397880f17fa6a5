// Streaming peers for Node: `read <url>` reads a body with fetch's reader and prints
// MiB/s; `serve <port>` answers GET /?n=<bytes>&chunk=<bytes> with res.write, waiting
// for 'drain' when the socket is full (backpressure, as Lunet's function bodies do).
const http = require("http");
const [mode, arg] = [process.argv[2], process.argv[3]];
if (mode === "read") {
  (async () => {
    const started = performance.now();
    const res = await fetch(arg);
    const reader = res.body.getReader();
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
    }
    console.log((total / 1048576 / ((performance.now() - started) / 1000)).toFixed(1));
  })();
} else {
  const blocks = new Map();
  http
    .createServer((req, res) => {
      const query = new URL(req.url, "http://x").searchParams;
      let left = Number(query.get("n") || 1048576);
      const size = Number(query.get("chunk") || 65536);
      if (!blocks.has(size)) blocks.set(size, Buffer.alloc(size, "x"));
      const block = blocks.get(size);
      res.writeHead(200);
      const pump = () => {
        while (left > 0) {
          const piece = left >= size ? block : block.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return res.once("drain", pump);
        }
        res.end();
      };
      pump();
    })
    .listen(Number(arg), "127.0.0.1", () => console.log("listening"));
}
