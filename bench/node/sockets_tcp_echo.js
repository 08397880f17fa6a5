// Node `net` echo server for the sockets benchmark: echoes each connection until it closes.
const net = require("net");
net.createServer({ noDelay: true }, (socket) => socket.pipe(socket)).listen(Number(process.argv[2]), "127.0.0.1");
