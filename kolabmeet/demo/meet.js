// A meeting client that drives kolabmeet as the Kolab 4 web client does (PROTOCOL.md, "What the real web
// client does"): the same requests in the same order, the same producer settings. The browser tests call
// window.meet through Playwright (Chromium) or WebDriver BiDi (Firefox); the dev-mode demo uses it with a
// few buttons. It needs window.mediasoupClient and window.io (bundle.js or bundle-legacy.js).
"use strict";

const WEBCAM_ENCODINGS = [
  { scaleResolutionDownBy: 4, maxBitrate: 300000 },
  { scaleResolutionDownBy: 2, maxBitrate: 800000 },
];
const SCREEN_ENCODINGS = [
  { maxBitrate: 1500000, dtx: true },
  { maxBitrate: 5000000, dtx: true },
];
const WEBCAM_CONSTRAINTS = { width: { max: 1280 }, aspectRatio: 16 / 9, frameRate: { ideal: 15 } };

class Meeting {
  constructor() {
    this.events = [];        // every notification and server request, in order: {method, data, at}
    this.consumers = new Map();
    this.producers = new Map();
    this.firstVideoAt = null;
    this.startedAt = performance.now();
    this.joinedAt = null;
    this.socket = null;
    this.closedReason = null;
  }

  log(method, data) {
    this.events.push({ method, data, at: Math.round(performance.now() - this.startedAt) });
  }

  request(method, data) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(20000).emit("request", { method, data }, (timeout, error, response) => {
        if (timeout) reject(new Error(`request ${method} timed out`));
        else if (error) reject(new Error(`${method}: ${JSON.stringify(error)} ${response || ""}`));
        else resolve(response);
      });
    });
  }

  // Joins the room of `token` and, when asked, sends webcam then mic. Resolves once that is done.
  // options: {webcam, mic, simulcast (default true), forceTcp, relay, videoCodec ("video/VP9"...)}
  start(token, options = {}) {
    this.options = { webcam: true, mic: true, simulcast: true, ...options };
    this.startedAt = performance.now();
    const url = new URL(token.replace(/^ws/, "http"));
    this.peerId = url.searchParams.get("peerId");
    return new Promise((resolve, reject) => {
      this.socket = io(token, { path: "/meetmedia/signaling/", transports: ["websocket"] });
      this.socket.on("notification", (n) => this.onNotification(n, resolve, reject));
      this.socket.on("request", (r, ack) => this.onRequest(r, ack));
      this.socket.on("disconnect", (reason) => {
        this.log("disconnect", reason);
        if (reason === "io server disconnect") this.closedReason = reason;
      });
    });
  }

  async onNotification({ method, data }, resolve, reject) {
    this.log(method, data);
    try {
      if (method === "roomReady") resolve(await this.ready(data.iceServers));
      else if (method === "roomBack") await this.restartDisconnected();
      else if (["consumerClosed", "consumerPaused", "consumerResumed"].includes(method)) this.onConsumerChange(method, data);
    } catch (error) {
      this.log("error", String(error));
      reject(error);
    }
  }

  async ready(iceServers) {
    this.iceServers = iceServers;
    const caps = await this.request("getRouterRtpCapabilities");
    caps.headerExtensions = caps.headerExtensions.filter((e) => e.uri !== "urn:3gpp:video-orientation");
    this.device = new mediasoupClient.Device();
    await this.device.load({ routerRtpCapabilities: caps });
    this.recvTransport = await this.transport({ producing: false, consuming: true });
    const joined = await this.request("join", { nickname: this.options.nickname || "page", rtpCapabilities: this.device.rtpCapabilities });
    this.joinedAt = performance.now() - this.startedAt;
    this.role = joined.role;
    if (this.role & 2) {
      if (this.options.webcam) await this.sendWebcam();
      if (this.options.mic) await this.sendMic();
    }
    return { peerId: joined.id, role: joined.role, peers: joined.peers, joinMs: Math.round(this.joinedAt), handler: this.device.handlerName };
  }

  async transport(flags) {
    const info = await this.request("createWebRtcTransport", { forceTcp: !!this.options.forceTcp, ...flags });
    const make = flags.producing ? "createSendTransport" : "createRecvTransport";
    const transport = this.device[make]({
      ...info,
      iceServers: this.iceServers || [],
      iceTransportPolicy: this.options.relay ? "relay" : "all",
    });
    transport.on("connect", ({ dtlsParameters }, ok, fail) => {
      this.request("connectWebRtcTransport", { transportId: transport.id, dtlsParameters }).then(ok, fail);
    });
    transport.on("produce", ({ kind, rtpParameters, appData }, ok, fail) => {
      this.request("produce", { transportId: transport.id, kind, rtpParameters, appData }).then(ok, fail);
    });
    transport.on("connectionstatechange", (state) => {
      this.log("connectionstatechange", { transportId: transport.id, state });
      if (state === "failed") this.restartIce(transport);
    });
    return transport;
  }

  async restartIce(transport) {
    const iceParameters = await this.request("restartIce", { transportId: transport.id });
    await transport.restartIce({ iceParameters });
  }

  async restartDisconnected() {
    for (const transport of [this.recvTransport, this.sendTransport]) {
      if (transport && ["disconnected", "failed"].includes(transport.connectionState)) await this.restartIce(transport);
    }
  }

  async sendTransportReady() {
    if (!this.sendTransport) this.sendTransport = await this.transport({ producing: true, consuming: false });
    return this.sendTransport;
  }

  async sendWebcam() {
    const stream = await navigator.mediaDevices.getUserMedia({ video: WEBCAM_CONSTRAINTS });
    const codec = this.options.videoCodec && this.device.rtpCapabilities.codecs.find(
      (c) => c.mimeType.toLowerCase() === this.options.videoCodec.toLowerCase());
    if (this.options.videoCodec && !codec) throw new Error(`this browser cannot send ${this.options.videoCodec}`);
    return this.produce(stream.getVideoTracks()[0], "webcam", {
      encodings: this.options.simulcast ? WEBCAM_ENCODINGS : undefined,
      codecOptions: { videoGoogleStartBitrate: 1000 },
      codec,
    });
  }

  async sendMic() {
    return this.produce(await this.micTrack(), "mic", {
      codecOptions: { opusStereo: false, opusDtx: true, opusFec: true, opusPtime: 20 },
    });
  }

  // The microphone, or with options.tone (a gain, 0 for silence) a 440 Hz WebAudio tone whose loudness the
  // tests set with setTone(): a speaker and a silent listener.
  async micTrack() {
    if (this.options.tone === undefined) {
      return (await navigator.mediaDevices.getUserMedia({ audio: true })).getAudioTracks()[0];
    }
    const context = new AudioContext();
    const oscillator = context.createOscillator();
    this.toneGain = context.createGain();
    this.toneGain.gain.value = this.options.tone;
    const destination = context.createMediaStreamDestination();
    oscillator.connect(this.toneGain).connect(destination);
    oscillator.start();
    await context.resume();
    return destination.stream.getAudioTracks()[0];
  }

  setTone(gain) {
    this.toneGain.gain.value = gain;
  }

  // A screen share with the Kolab client's settings. With {display: true} the user picks a screen; else the
  // track is drawn on a canvas (headless browsers have no screen to pick; the server sees the same thing:
  // two encodings, appData.source "screen").
  async sendScreen({ display = false } = {}) {
    if (display) {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 5 } } });
      return this.produce(stream.getVideoTracks()[0], "screen", { encodings: SCREEN_ENCODINGS });
    }
    const canvas = document.createElement("canvas");
    canvas.width = 1280;
    canvas.height = 720;
    const context = canvas.getContext("2d");
    const draw = () => {
      context.fillStyle = `hsl(${(performance.now() / 20) % 360}, 60%, 50%)`;
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.fillStyle = "#fff";
      context.font = "64px sans-serif";
      context.fillText(new Date().toISOString(), 40, 360);
    };
    draw();
    this.screenTimer = setInterval(draw, 100);
    const track = canvas.captureStream(5).getVideoTracks()[0];
    return this.produce(track, "screen", { encodings: SCREEN_ENCODINGS });
  }

  async produce(track, source, options) {
    const transport = await this.sendTransportReady();
    const producer = await transport.produce({ track, ...options, appData: { source } });
    this.producers.set(source, producer);
    return producer.id;
  }

  async onRequest({ method, data }, ack) {
    this.log(method, data);
    if (method !== "newConsumer") return ack(500, `unknown request ${method}`);
    try {
      const consumer = await this.recvTransport.consume({
        id: data.id, producerId: data.producerId, kind: data.kind, rtpParameters: data.rtpParameters,
      });
      consumer.peerId = data.peerId;
      consumer.source = data.appData && data.appData.source;
      this.consumers.set(consumer.id, consumer);
      this.attach(consumer);
      ack();
      if (data.producerPaused) consumer.pause();
      if (consumer.kind === "video") this.watchFirstFrame(consumer);
    } catch (error) {
      this.log("error", String(error));
      ack(500, String(error));
    }
  }

  attach(consumer) {
    const element = document.createElement(consumer.kind);
    element.autoplay = true;
    element.muted = true;
    element.playsInline = true;
    element.srcObject = new MediaStream([consumer.track]);
    element.dataset.consumer = consumer.id;
    document.getElementById("media")?.appendChild(element);
    element.play().catch(() => {});
    consumer.element = element;
  }

  async watchFirstFrame(consumer) {
    while (this.firstVideoAt === null && !consumer.closed) {
      const stats = await this.inbound(consumer);
      if (stats && stats.framesDecoded > 0) {
        this.firstVideoAt = Math.round(performance.now() - this.startedAt);
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  onConsumerChange(method, { consumerId }) {
    const consumer = this.consumers.get(consumerId);
    if (!consumer) return;
    if (method === "consumerClosed") {
      consumer.close();
      consumer.element?.remove();
      this.consumers.delete(consumerId);
    } else if (method === "consumerPaused") consumer.pause();
    else consumer.resume();
  }

  async inbound(consumer) {
    const report = await consumer.getStats();
    for (const stat of report.values()) if (stat.type === "inbound-rtp") return stat;
    return null;
  }

  // What the tests check: per consumer the decoded frames or received audio packets; per producer its encodings.
  async stats() {
    const consumers = [];
    for (const consumer of this.consumers.values()) {
      const s = (await this.inbound(consumer)) || {};
      consumers.push({
        id: consumer.id, producerId: consumer.producerId, peerId: consumer.peerId, kind: consumer.kind,
        source: consumer.source, paused: consumer.paused, framesDecoded: s.framesDecoded || 0,
        packetsReceived: s.packetsReceived || 0, frameWidth: s.frameWidth || 0, bytesReceived: s.bytesReceived || 0,
        mimeType: consumer.rtpParameters.codecs[0].mimeType,
      });
    }
    const producers = [];
    for (const [source, producer] of this.producers) {
      const encodings = [];
      for (const stat of (await producer.getStats()).values()) {
        if (stat.type === "outbound-rtp") {
          encodings.push({ rid: stat.rid, framesEncoded: stat.framesEncoded, packetsSent: stat.packetsSent,
                           frameWidth: stat.frameWidth, qualityLimitationReason: stat.qualityLimitationReason,
                           targetBitrate: stat.targetBitrate });
        }
      }
      producers.push({ id: producer.id, source, kind: producer.kind, paused: producer.paused, encodings });
    }
    const transports = {};
    for (const [name, transport] of [["recv", this.recvTransport], ["send", this.sendTransport]]) {
      if (transport) transports[name] = { state: transport.connectionState, ...(await this.selectedPair(transport)) };
    }
    return { peerId: this.peerId, joinMs: this.joinedAt === null ? null : Math.round(this.joinedAt),
             firstVideoMs: this.firstVideoAt, connected: !!this.socket?.connected, consumers, producers, transports };
  }

  async selectedPair(transport) {
    const report = await transport.getStats();
    const byId = new Map([...report.values()].map((s) => [s.id, s]));
    for (const stat of report.values()) {
      const pair = stat.type === "transport" ? byId.get(stat.selectedCandidatePairId)
        : (stat.type === "candidate-pair" && stat.selected ? stat : null);
      if (!pair) continue;
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      return { localType: local.candidateType, localProtocol: local.protocol, relayProtocol: local.relayProtocol,
               remoteProtocol: remote.protocol, remoteAddress: remote.address, remotePort: remote.port,
               availableOutgoingBitrate: pair.availableOutgoingBitrate };
    }
    return {};
  }

  async mute(source) {
    const producer = this.producers.get(source);
    producer.pause();
    await this.request("pauseProducer", { producerId: producer.id });
  }

  async unmute(source) {
    const producer = this.producers.get(source);
    producer.resume();
    await this.request("resumeProducer", { producerId: producer.id });
  }

  async pauseConsumer(consumerId) {
    this.consumers.get(consumerId).pause();
    await this.request("pauseConsumer", { consumerId });
  }

  async resumeConsumer(consumerId) {
    this.consumers.get(consumerId).resume();
    await this.request("resumeConsumer", { consumerId });
  }

  // The network drops the socket (not a client disconnect): socket.io reconnects with the same URL.
  dropSocket() {
    this.socket.io.engine.close();
  }

  kick(peerId) {
    return this.request("moderator:kickPeer", { peerId });
  }

  closeRoom() {
    return this.request("moderator:closeRoom");
  }

  leave() {
    this.socket.close();
  }

  seen(method) {
    return this.events.filter((e) => e.method === method).map((e) => e.data);
  }

  seen_events(method) {
    return this.events.filter((e) => e.method === method);
  }
}

window.meet = new Meeting();
