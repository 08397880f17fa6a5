// Writes M MiB in 64 KiB chunks to a TCP echo server and reads the echo; prints MB/s.
const net = require("net");
const [port, megabytes] = [Number(process.argv[2]), Number(process.argv[3] || 256)];
const total = megabytes * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024, 120);
const socket = net.connect(port, "127.0.0.1", () => {
  const start = performance.now();
  let received = 0;
  socket.on("data", (d) => {
    received += d.length;
    if (received >= total) { console.log((megabytes / ((performance.now() - start) / 1000)).toFixed(1)); socket.destroy(); }
  });
  let sent = 0;
  const write = () => { while (sent < total) { sent += chunk.length; if (!socket.write(chunk)) { socket.once("drain", write); return; } } };
  write();
});
