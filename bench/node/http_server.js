// Node's http server doing what the Lunet handlers do: hello, table-with-headers, echo, json.
const http = require("http");
const [mode, port] = [process.argv[2] || "hello", Number(process.argv[3] || 8080)];
const items = [];
for (let i = 1; i <= 50; i++) {
  items.push({ id: i, name: "item " + i, price: i * 1.5, tags: ["a", "b"], active: i % 2 === 0 });
}
http
  .createServer((req, res) => {
    if (mode === "echo") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => res.end(Buffer.concat(chunks)));
    } else if (mode === "json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items, count: items.length }));
    } else if (mode === "table") {
      res.writeHead(200, { "content-type": "text/plain", "x-powered-by": "node" });
      res.end("Hello from " + req.url.split("?")[0]);
    } else {
      res.end("Hello, World!");
    }
  })
  .listen(port, "127.0.0.1", () => console.log("listening"));
