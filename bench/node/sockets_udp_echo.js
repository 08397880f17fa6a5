// Node `dgram` echo server for the sockets benchmark.
const dgram = require("dgram");
const socket = dgram.createSocket("udp4");
socket.on("message", (data, from) => socket.send(data, from.port, from.address));
socket.bind(Number(process.argv[2]), "127.0.0.1");
