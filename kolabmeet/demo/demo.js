// The dev-mode demo: when served by `kolabmeet serve --dev`, the page asks the server for a token of the demo
// room and joins it. Served by the browser tests (no token route), it does nothing: the tests drive window.meet.
"use strict";

(async () => {
  const status = document.getElementById("status");
  const answer = await fetch("token", { method: "POST" }).catch(() => null);
  if (!answer || !answer.ok) {
    status.textContent = "Ready (no demo room here).";
    return;
  }
  const { token } = await answer.json();
  status.textContent = "Joining…";
  try {
    const joined = await window.meet.start(token, { nickname: `guest ${Math.floor(Math.random() * 1000)}` });
    status.textContent = `In the demo room with ${joined.peers.length} other(s). Open this page in another tab to add someone.`;
  } catch (error) {
    status.textContent = `Could not join: ${error}`;
    return;
  }
  const mute = document.getElementById("mute");
  mute.disabled = false;
  mute.onclick = async () => {
    const muted = mute.textContent.startsWith("Unmute");
    await (muted ? window.meet.unmute("mic") : window.meet.mute("mic"));
    mute.textContent = muted ? "Mute microphone" : "Unmute microphone";
  };
  const screen = document.getElementById("screen");
  screen.disabled = false;
  screen.onclick = async () => {
    screen.disabled = true;
    await window.meet.sendScreen({ display: true });
  };
})();
