// The go-live page: publishes this browser's camera and microphone to a stream over WHIP (RFC 9725) on the same
// origin. The stream key is read from the password input when Start is pressed and kept in this module's memory
// only: it never goes into the URL, storage or a log.

const $ = (id) => document.getElementById(id);
const parts = location.pathname.split("/").filter((p) => p.length > 0);
const namespace = decodeURIComponent(parts[1] || "");
const name = decodeURIComponent(parts[2] || "");
const whipURL = `/whip/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

// Answers that retrying cannot fix: the reason is shown and the page stays stopped.
const FATAL = new Set([400, 401, 403, 404, 406, 409, 413, 415]);
const MAX_BACKOFF_MS = 30000;

let media = null; // the local MediaStream
let pc = null;
let resource = null; // the session's Location
let key = null; // in memory while publishing
let wanted = false; // Start pressed and Stop not yet
let attempt = 0;
let retryTimer = null;
let disconnectTimer = null;

function setState(state, text) {
  const element = $("state");
  element.dataset.state = state;
  element.textContent = text;
  const busy = state !== "idle" && state !== "error";
  $("start").disabled = busy;
  $("stop").disabled = !busy;
  $("key").disabled = busy;
}

function fillSelect(select, devices, current) {
  select.replaceChildren();
  devices.forEach((device, index) => {
    const option = document.createElement("option");
    option.value = device.deviceId;
    option.textContent = device.label || `${device.kind === "videoinput" ? "Camera" : "Microphone"} ${index + 1}`;
    option.selected = device.deviceId === current;
    select.append(option);
  });
  select.disabled = devices.length === 0;
}

async function acquire() {
  const camera = $("camera").value;
  const microphone = $("microphone").value;
  const stream = await navigator.mediaDevices.getUserMedia({
    video: camera ? { deviceId: { exact: camera } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: microphone ? { deviceId: { exact: microphone } } : true,
  });
  if (media) media.getTracks().forEach((track) => track.stop());
  media = stream;
  const audio = media.getAudioTracks()[0];
  if (audio) audio.enabled = !$("mute").checked;
  $("preview").srcObject = media;
  // Labels are only known after permission.
  const devices = await navigator.mediaDevices.enumerateDevices();
  const videoTrack = media.getVideoTracks()[0];
  fillSelect($("camera"), devices.filter((d) => d.kind === "videoinput"), videoTrack?.getSettings().deviceId);
  fillSelect($("microphone"), devices.filter((d) => d.kind === "audioinput"), audio?.getSettings().deviceId);
  if (pc) {
    for (const sender of pc.getSenders()) {
      const track = media.getTracks().find((t) => t.kind === sender.track?.kind);
      if (track) await sender.replaceTrack(track);
    }
  }
}

async function applyBitrate() {
  if (!pc) return;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (!sender) return;
  const parameters = sender.getParameters();
  if (!parameters.encodings || parameters.encodings.length === 0) parameters.encodings = [{}];
  parameters.encodings[0].maxBitrate = Number($("bitrate").value);
  // A live stream keeps its frame rate when the CPU or the network is short, and gives up resolution instead.
  parameters.degradationPreference = "maintain-framerate";
  try {
    await sender.setParameters(parameters);
  } catch {
    delete parameters.degradationPreference;
    await sender.setParameters(parameters);
  }
}

function preferH264(transceiver) {
  const capabilities = RTCRtpSender.getCapabilities ? RTCRtpSender.getCapabilities("video") : null;
  if (!capabilities || !transceiver.setCodecPreferences) return;
  const h264 = capabilities.codecs.filter((c) => c.mimeType.toLowerCase() === "video/h264");
  if (h264.length === 0) return;
  // Constrained baseline with packetization-mode 1 first: what every H.264 decoder takes.
  h264.sort((a, b) => score(b) - score(a));
  const rest = capabilities.codecs.filter((c) => ["video/rtx", "video/red", "video/ulpfec"].includes(c.mimeType.toLowerCase()));
  transceiver.setCodecPreferences([...h264, ...rest]);
}

function score(codec) {
  const fmtp = codec.sdpFmtpLine || "";
  return (fmtp.includes("packetization-mode=1") ? 2 : 0) + (fmtp.includes("profile-level-id=42e0") ? 1 : 0);
}

function gathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (connection.iceGatheringState === "complete") {
        connection.removeEventListener("icegatheringstatechange", done);
        clearTimeout(timer);
        resolve();
      }
    };
    // Without trickle ICE the offer carries the candidates found so far.
    const timer = setTimeout(() => {
      connection.removeEventListener("icegatheringstatechange", done);
      resolve();
    }, 3000);
    connection.addEventListener("icegatheringstatechange", done);
  });
}

async function reason(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string") return body.error;
  } catch {
    // Not JSON: the text itself.
  }
  return text.trim() || `${response.status} ${response.statusText}`;
}

function teardown() {
  clearTimeout(disconnectTimer);
  disconnectTimer = null;
  if (pc) {
    pc.onconnectionstatechange = null;
    pc.close();
    pc = null;
  }
}

async function endSession() {
  const location = resource;
  resource = null;
  if (!location) return;
  try {
    // keepalive: the DELETE still goes out when the page is being closed.
    await fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${key}` }, keepalive: true });
  } catch {
    // The session ends on the server when its media stops anyway.
  }
}

async function connect() {
  retryTimer = null;
  if (!wanted) return;
  setState(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "Connecting…" : `Reconnecting (attempt ${attempt + 1})…`);
  const connection = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  pc = connection;
  try {
    const video = media.getVideoTracks()[0];
    const audio = media.getAudioTracks()[0];
    if (!video) throw new Error("No camera track.");
    const videoTransceiver = connection.addTransceiver(video, { direction: "sendonly", streams: [media] });
    preferH264(videoTransceiver);
    if (audio) connection.addTransceiver(audio, { direction: "sendonly", streams: [media] });
    connection.onconnectionstatechange = () => onConnectionState(connection);
    await connection.setLocalDescription(await connection.createOffer());
    await gathered(connection);
    if (pc !== connection || !wanted) return;
    let response;
    try {
      response = await fetch(whipURL, {
        method: "POST",
        headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${key}` },
        body: connection.localDescription.sdp,
      });
    } catch (error) {
      throw Object.assign(new Error(`The gateway cannot be reached (${error.message}).`), { retry: true });
    }
    if (!response.ok) {
      const message = await reason(response);
      // After a network drop the previous session may still hold the stream: its DELETE could not get through, and
      // the gateway ends it when its ICE consent runs out (30 s) or the relay gives up on its silent publisher
      // (10 s). Retried, unlike a 409 on Start.
      const previousSession = response.status === 409 && attempt > 0;
      throw Object.assign(new Error(`${response.status}: ${message}`), {
        retry: previousSession || !FATAL.has(response.status),
      });
    }
    const location = response.headers.get("Location");
    resource = location ? new URL(location, new URL(whipURL, window.location.href)).href : null;
    const answer = await response.text();
    if (pc !== connection || !wanted) {
      await endSession();
      return;
    }
    await connection.setRemoteDescription({ type: "answer", sdp: answer });
    await applyBitrate();
    // ICE and DTLS take a moment; one that never connects is retried like a lost one.
    if (connection.connectionState !== "connected") {
      disconnectTimer = setTimeout(() => reconnect("the connection did not come up"), 15000);
    }
  } catch (error) {
    if (pc !== connection) return;
    teardown();
    await endSession();
    if (error.retry === false || error.retry === undefined) {
      stopPublishing();
      setState("error", `Error: ${error.message}`);
    } else {
      scheduleRetry(error.message);
    }
  }
}

function onConnectionState(connection) {
  if (pc !== connection) return;
  const state = connection.connectionState;
  if (state === "connected") {
    clearTimeout(disconnectTimer);
    disconnectTimer = null;
    attempt = 0;
    setState("live", "Live");
  } else if (state === "failed") {
    reconnect("the connection failed");
  } else if (state === "disconnected") {
    // ICE often recovers from a short loss by itself; a new session if it does not.
    clearTimeout(disconnectTimer);
    disconnectTimer = setTimeout(() => reconnect("the connection was lost"), 2000);
    setState("reconnecting", "Reconnecting: the connection was lost…");
  }
}

async function reconnect(why) {
  if (!wanted) return;
  teardown();
  await endSession();
  scheduleRetry(why);
}

function scheduleRetry(why) {
  if (!wanted) return;
  const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt);
  attempt += 1;
  setState("reconnecting", `Reconnecting in ${Math.round(delay / 1000)} s: ${why}`);
  retryTimer = setTimeout(connect, delay);
}

function stopPublishing() {
  wanted = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  teardown();
}

async function start(event) {
  event.preventDefault();
  if (wanted) return;
  const typed = $("key").value.trim();
  if (!typed) {
    setState("error", "Error: type the stream key first.");
    $("key").focus();
    return;
  }
  key = typed;
  if (!media) {
    try {
      await acquire();
    } catch (error) {
      setState("error", `Error: no camera or microphone (${error.message}).`);
      return;
    }
  }
  wanted = true;
  attempt = 0;
  await connect();
}

async function stop() {
  // DELETE first: closing the connection first would end the session on the gateway before the DELETE arrives.
  wanted = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  await endSession();
  stopPublishing();
  if (!wanted) key = null;
  setState("idle", "Idle");
  $("start").focus();
}

$("stream-name").textContent = `${namespace}/${name}`;
document.title = `Go live ${namespace}/${name} · liverelay`;
$("golive").addEventListener("submit", start);
$("stop").addEventListener("click", stop);
$("mute").addEventListener("change", () => {
  media?.getAudioTracks().forEach((track) => {
    track.enabled = !$("mute").checked;
  });
});
$("bitrate").addEventListener("change", () => applyBitrate().catch(() => {}));
for (const id of ["camera", "microphone"]) {
  $(id).addEventListener("change", () =>
    acquire().catch((error) => setState("error", `Error: ${error.message}`)),
  );
}
window.addEventListener("pagehide", () => {
  if (wanted) {
    wanted = false;
    endSession();
    stopPublishing();
  }
});
acquire().catch((error) => setState("error", `Error: no camera or microphone (${error.message}).`));
