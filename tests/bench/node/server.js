// The benchmark's second peer: step-05's chat on Node.js with the ws
// package, the way a reader of this book would write it in JavaScript.
// `node tests/bench/node/server.js [ADDRESS]`, after `npm ci` in this folder.
// The same protocol and limits as the stages (steps/step-05-json/src/chat.rs):
// a message over 64 KiB is refused with close code 1009 (ws's maxPayload).
// Like the tokio reference, it keeps all it must send to a slow client.
"use strict";
const { WebSocketServer } = require("ws");

const [host, port] = (process.argv[2] || "127.0.0.1:8080").split(/:(?=\d+$)/);
const server = new WebSocketServer({ host, port: Number(port), maxPayload: 64 * 1024 });
const members = new Map(); // socket -> name, in the order they joined

server.on("listening", () => {
  console.log(`Listening on http://${host}:${server.address().port}`);
});

function sendToEveryone(event, except) {
  const text = JSON.stringify(event); // encoded once for everyone
  for (const member of members.keys()) if (member !== except) member.send(text);
}

// One request; returns the reason it was refused, if it was.
function handle(socket, request) {
  if (request?.type === "join") {
    if (members.has(socket)) return "you have already joined";
    if (typeof request.name !== "string") return 'a join needs a "name"';
    const name = request.name.trim();
    const length = [...name].length;
    if (length < 1 || length > 32) return "a name has 1 to 32 characters";
    if (/\p{Cc}/u.test(name)) return "a name cannot contain control characters";
    for (const taken of members.values())
      if (taken.toLowerCase() === name.toLowerCase()) return `the name "${name}" is taken`;
    members.set(socket, name);
    socket.send(JSON.stringify({ type: "welcome", name, users: [...members.values()] }));
    sendToEveryone({ type: "join", name }, socket);
  } else if (request?.type === "message") {
    const from = members.get(socket);
    if (from === undefined) return 'join first: {"type":"join","name":"..."}';
    if (typeof request.text !== "string") return 'a message needs a "text"';
    sendToEveryone({ type: "message", from, text: request.text });
  } else return request?.type === undefined ? 'a message needs a "type"' : "unknown type";
}

server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    let reason = "send text: JSON objects, not binary messages";
    if (!isBinary) {
      try {
        reason = handle(socket, JSON.parse(data));
      } catch (error) {
        reason = `invalid JSON: ${error.message}`;
      }
    }
    if (reason) socket.send(JSON.stringify({ type: "error", reason }));
  });
  socket.on("close", () => {
    const name = members.get(socket);
    if (members.delete(socket)) sendToEveryone({ type: "leave", name });
  });
  socket.on("error", () => {}); // a broken connection closes: that is all
});
