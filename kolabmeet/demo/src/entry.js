// The newest mediasoup-client 3.x with socket.io-client 4.7, for meet.js.
import * as mediasoupClient from "mediasoup-client";
import { io } from "socket.io-client";

window.mediasoupClient = mediasoupClient;
window.io = io;
