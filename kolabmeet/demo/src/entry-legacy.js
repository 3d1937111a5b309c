// mediasoup-client 3.7.8, the version the Kolab 4 web client locks.
import * as mediasoupClient from "mediasoup-client-legacy";
import { io } from "socket.io-client";

window.mediasoupClient = mediasoupClient;
window.io = io;
