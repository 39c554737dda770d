#!/usr/bin/env node
// Peer 4: Node socket.io v4 server (from the load rig, ../shared/bench-rig/peers/).
//
//   node peers/socketio_node.js PORT
//
// The client names its room in the connect auth ({session_id: ROOM}) or the query string;
// the socket joins it. Every event (the rig's "contextual_update"; bench/toolcalls.py's
// four frames of a tool call) gets session_id and a per-room seq and is emitted under its
// name to the whole room, sender included: io.to(room).emit(...).
// socket.io encodes a room broadcast once (one pre-built WebSocket frame for all members).
'use strict';
const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: socketio_node.js PORT');
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false, cors: { origin: '*' } });
const seqs = new Map();

io.on('connection', (socket) => {
  const room = (socket.handshake.auth && socket.handshake.auth.session_id) ||
    socket.handshake.query.session_id || 'default';
  socket.join(room);
  socket.onAny((event, data) => {
    if (!data || typeof data !== 'object') return;
    const seq = (seqs.get(room) || 0) + 1;
    seqs.set(room, seq);
    data.session_id = room;
    data.seq = seq;
    io.to(room).emit(event, data);
  });
  socket.on('disconnect', () => {
    if (!io.sockets.adapter.rooms.has(room)) seqs.delete(room);
  });
});

httpServer.listen({ port, host: '127.0.0.1', backlog: 1024 }, () => {
  console.error(`socketio_node listening on 127.0.0.1:${port} node=${process.version}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
