// WebSocket client figures with Node's ws: "rtt <url> <seconds>" or "oneway <url> <n>".
const WebSocket = require("ws");
const [mode, url, arg] = [process.argv[2], process.argv[3], Number(process.argv[4])];
const socket = new WebSocket(url);
socket.on("open", () => {
  const start = performance.now();
  if (mode === "rtt") {
    let count = 0;
    socket.on("message", () => {
      count++;
      if (performance.now() - start < arg * 1000) socket.send("ping-payload-32-bytes-long-xxxxx");
      else { console.log((count / ((performance.now() - start) / 1000)).toFixed(1)); socket.close(); }
    });
    socket.send("ping-payload-32-bytes-long-xxxxx");
  } else {
    // One-way: binary messages to a `sink` server, then a text one whose echo means
    // the server has read them all.
    socket.on("message", () => {
      console.log((arg / ((performance.now() - start) / 1000)).toFixed(1));
      socket.close();
    });
    const payload = Buffer.alloc(1024, 120);
    for (let i = 0; i < arg; i++) socket.send(payload, { binary: true });
    socket.send("done");
  }
});
