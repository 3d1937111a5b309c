// socket.io-client 4.7.5 (the Kolab web client's) in Node.js: connects to argv[2] with the
// transports argv[3] (comma-separated), reconnecting as the web client does, and prints one JSON
// line of what it saw within argv[4] milliseconds: its events and the notifications' methods.
const { io } = require("socket.io-client");

const [url, transports, millis] = process.argv.slice(2);
const parsed = new URL(url);
const seen = [];
const socket = io(parsed.origin + "/" + parsed.search, {
  path: "/meetmedia/signaling", transports: transports.split(","), reconnectionDelay: 100,
  reconnectionDelayMax: 200,
});
socket.on("connect", () => seen.push("connect"));
socket.on("disconnect", (reason) => seen.push("disconnect:" + reason));
socket.on("connect_error", (error) => seen.push("connect_error:" + error.message));
socket.io.on("reconnect_attempt", () => seen.push("reconnect_attempt"));
socket.on("notification", (notification) => seen.push("notification:" + notification.method));
setTimeout(() => {
  console.log(JSON.stringify(seen));
  socket.close();
  process.exit(0);
}, Number(millis));
