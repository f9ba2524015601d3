// liverelay console: a single-page app in one ES module, served by the liverelay binary. No framework, no build.
// The server checks the session, the CSRF token and ownership on every request; this page only shows what it allows.

const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  session: null, // { user, admin, namespace, csrfToken, oneLiveAtATime }
  streams: new Map(), // "namespace/name" -> view
  cards: new Map(), // "namespace/name" -> <li>
  events: null, // EventSource
  editing: null, // the view being edited, or null for a new stream
};

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.fields = (body && body.fields) || [];
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.session) headers["X-CSRF-Token"] = state.session.csrfToken;
  const response = await fetch(`/api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && path !== "session") showSignIn("Your session ended: sign in again.");
    throw new APIError(response.status, json);
  }
  return json;
}

const key = (view) => `${view.namespace}/${view.name}`;
const streamPath = (view) => `streams/${encodeURIComponent(view.namespace)}/${encodeURIComponent(view.name)}`;

// MARK: Sign-in

function showSignIn(message = "") {
  state.session = null;
  if (state.events) state.events.close();
  state.events = null;
  state.streams.clear();
  state.cards.clear();
  $("#streams").replaceChildren();
  $("#streams-view").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#sign-in-view").hidden = false;
  $("#sign-in-error").textContent = message;
  $("#username").focus();
}

async function signedIn(session) {
  state.session = session;
  $("#sign-in-view").hidden = true;
  $("#streams-view").hidden = false;
  $("#sign-out").hidden = false;
  $("#who").textContent = `${session.user}${session.admin ? " (admin)" : ""} · namespace ${session.namespace}`;
  $("#one-live").checked = session.oneLiveAtATime;
  await loadStreams();
  listen();
}

$("#sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#sign-in-error").textContent = "";
  try {
    const session = await api("POST", "session", {
      username: $("#username").value,
      password: $("#password").value,
    });
    $("#password").value = "";
    await signedIn(session);
  } catch (error) {
    $("#sign-in-error").textContent = error.message;
    $("#password").select();
  }
});

$("#sign-out").addEventListener("click", async () => {
  try {
    await api("DELETE", "session");
  } finally {
    showSignIn("Signed out.");
  }
});

$("#one-live").addEventListener("change", async (event) => {
  try {
    state.session = await api("PUT", "settings", { oneLiveAtATime: event.target.checked });
  } catch (error) {
    $("#streams-error").textContent = error.message;
  }
});

// MARK: Streams

async function loadStreams() {
  const views = await api("GET", "streams");
  for (const view of views) render(view);
  for (const id of [...state.streams.keys()]) {
    if (!views.some((view) => key(view) === id)) removeCard(id);
  }
  $("#no-streams").hidden = state.streams.size > 0;
}

function listen() {
  if (state.events) state.events.close();
  const events = new EventSource("/api/events");
  events.addEventListener("stream", (event) => render(JSON.parse(event.data)));
  events.addEventListener("removed", (event) => removeCard(key(JSON.parse(event.data))));
  events.addEventListener("open", () => loadStreams().catch(() => {}));
  events.addEventListener("error", () => {
    // Closed by sign-out or a restart; EventSource reconnects by itself unless the session is gone.
    api("GET", "session").catch(() => events.close());
  });
  state.events = events;
}

function removeCard(id) {
  state.streams.delete(id);
  const card = state.cards.get(id);
  if (card) card.remove();
  state.cards.delete(id);
  $("#no-streams").hidden = state.streams.size > 0;
}

function formatBitrate(bitsPerSecond) {
  if (bitsPerSecond >= 1e6) return `${(bitsPerSecond / 1e6).toFixed(2)} Mbit/s`;
  return `${Math.round(bitsPerSecond / 1e3)} kbit/s`;
}

const stateWords = {
  pushing: "pushing",
  backingOff: "backing off",
  disabled: "disabled",
  connecting: "connecting",
  idle: "waiting for the stream",
  stopped: "stopped",
};

function render(view) {
  const id = key(view);
  state.streams.set(id, view);
  $("#no-streams").hidden = true;
  let card = state.cards.get(id);
  if (!card) {
    card = $("#stream-card").content.firstElementChild.cloneNode(true);
    card.dataset.stream = id;
    wire(card, id);
    $("#streams").append(card);
    state.cards.set(id, card);
  }
  const namespaced = state.session && state.session.admin ? ` (${view.namespace})` : "";
  $(".s-name", card).textContent = view.name + namespaced;
  const phase = $(".phase", card);
  phase.textContent = view.phase;
  phase.dataset.phase = view.phase;
  const live = $(".s-live", card);
  live.textContent = view.suspended ? "Go Live" : "Go Offline";
  live.setAttribute("aria-label", `${view.suspended ? "Go Live" : "Go Offline"}: ${view.name}`);
  $(".s-edit", card).setAttribute("aria-label", `Edit ${view.name}`);
  $(".s-problem", card).textContent = view.conditions.join("; ");
  $(".s-ingest", card).textContent = view.ingestURL || "(no port yet)";
  // The go-live page publishes with WHIP from this browser; without a known gateway base there is no link.
  const goLive = $(".s-go-live", card);
  $(".s-go-live-row", card).hidden = !view.goLiveURL;
  if (view.goLiveURL) {
    goLive.href = view.goLiveURL;
    goLive.setAttribute("aria-label", `Go live from this browser: ${view.name} (opens a new tab)`);
  } else {
    goLive.removeAttribute("href");
  }
  // A key is shown only to its owner (the server refuses anyone else, an admin included).
  const owner = Boolean(state.session && state.session.namespace === view.namespace);
  $(".s-reveal", card).hidden = !owner;
  $(".s-copy-key", card).hidden = !owner;

  const stats = $(".s-stats", card);
  stats.replaceChildren();
  if (view.stats) {
    const s = view.stats;
    const rows = [
      ["Bitrate", formatBitrate(s.bitrate)],
      ["Frame rate", `${s.frameRate.toFixed(1)} fps`],
      ["Resolution", s.width && s.height ? `${s.width}×${s.height}` : "–"],
      ["Codecs", [s.videoCodec, s.audioCodec].filter(Boolean).join(" + ") || "–"],
      ["Keyframe interval", s.keyframeIntervalSeconds != null ? `${s.keyframeIntervalSeconds.toFixed(1)} s` : "–"],
    ];
    for (const [name, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.className = `stat-${name.toLowerCase().replace(/ /g, "-")}`;
      stats.append(dt, dd);
    }
  }
  const warnings = $(".s-warnings", card);
  warnings.replaceChildren(
    ...view.warnings.map((warning) => {
      const li = document.createElement("li");
      li.textContent = `⚠ ${warning.message}`;
      return li;
    }),
  );

  // Target rows are kept across updates (updated in place), so a switch keeps the keyboard focus.
  const targets = $(".s-targets", card);
  const rows = new Map([...targets.children].map((li) => [li.dataset.target, li]));
  for (const [name, li] of rows) {
    if (!view.targets.some((target) => target.name === name)) li.remove();
  }
  let previous = null;
  for (const target of view.targets) {
    let li = rows.get(target.name);
    if (!li) {
      li = document.createElement("li");
      li.dataset.target = target.name;
      const name = document.createElement("strong");
      name.textContent = target.name;
      const url = document.createElement("code");
      const status = document.createElement("span");
      status.className = "t-state";
      status.setAttribute("aria-live", "polite");
      const label = document.createElement("label");
      label.className = "inline";
      const toggle = document.createElement("input");
      toggle.type = "checkbox";
      toggle.setAttribute("role", "switch");
      toggle.className = "t-switch";
      toggle.addEventListener("change", () => switchTarget(id, target.name, toggle));
      label.append(toggle, ` ${target.name} on`);
      li.append(name, url, status, label);
    }
    // In the spec's order. A row already in place is left alone: moving it, even to where it is, would take the
    // focus from its switch.
    const next = previous ? previous.nextElementSibling : targets.firstElementChild;
    if (next !== li) targets.insertBefore(li, next);
    previous = li;
    $("code", li).textContent = target.url;
    const toggle = $(".t-switch", li);
    if (!toggle.dataset.pending) toggle.checked = target.enabled;
    const status = $(".t-state", li);
    const current = target.enabled ? target.state || "idle" : "disabled";
    status.dataset.state = current;
    let text = stateWords[current] || current;
    if (current === "backingOff") {
      if (target.lastError) text += `: ${target.lastError}`;
      if (target.nextRetrySeconds != null) text += ` (next retry in ${Math.ceil(target.nextRetrySeconds)} s)`;
    }
    status.textContent = text;
  }

  const frame = $(".s-preview", card);
  const showPreview = view.preview && view.previewURL && view.phase === "Live";
  if (showPreview && frame.getAttribute("src") !== view.previewURL) {
    frame.setAttribute("title", `Live preview of ${view.name}`);
    frame.src = view.previewURL;
  }
  if (!showPreview && frame.getAttribute("src")) frame.removeAttribute("src");
  frame.hidden = !showPreview;
  $(".s-preview-off", card).hidden = showPreview;
}

function wire(card, id) {
  const view = () => state.streams.get(id);
  const fail = (error) => {
    $(".s-problem", card).textContent = error.message;
  };
  $(".s-live", card).addEventListener("click", async () => {
    try {
      render(await api("POST", `${streamPath(view())}/live`, { live: view().suspended }));
    } catch (error) {
      fail(error);
    }
  });
  $(".s-edit", card).addEventListener("click", () => openEditor(view()));
  $(".s-copy-url", card).addEventListener("click", () => copy(view().ingestURL || ""));
  const keyField = $(".s-key", card);
  const reveal = async () => {
    const { key: value } = await api("POST", `${streamPath(view())}/key/reveal`, {});
    return value;
  };
  $(".s-reveal", card).addEventListener("click", async (event) => {
    try {
      if (keyField.type === "password") {
        keyField.value = await reveal();
        keyField.type = "text";
        event.target.textContent = "Hide";
      } else {
        keyField.value = "••••••••••••";
        keyField.type = "password";
        event.target.textContent = "Reveal";
      }
    } catch (error) {
      fail(error);
    }
  });
  $(".s-copy-key", card).addEventListener("click", async () => {
    try {
      await copy(await reveal());
    } catch (error) {
      fail(error);
    }
  });
  $(".s-new-key", card).addEventListener("click", async () => {
    if (!confirm("Make a new stream key? The current one stops working at once.")) return;
    try {
      await api("POST", `${streamPath(view())}/key`, {});
      keyField.value = "••••••••••••";
      keyField.type = "password";
      $(".s-reveal", card).textContent = "Reveal";
    } catch (error) {
      fail(error);
    }
  });
}

async function switchTarget(id, name, toggle) {
  const view = state.streams.get(id);
  toggle.dataset.pending = "1"; // until the server has it: an update meanwhile must not flip it back
  try {
    render(
      await api("PUT", `${streamPath(view)}/targets/${encodeURIComponent(name)}/enabled`, {
        enabled: toggle.checked,
      }),
    );
  } catch (error) {
    toggle.checked = !toggle.checked;
    $(".s-problem", state.cards.get(id)).textContent = error.message;
  } finally {
    delete toggle.dataset.pending;
  }
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard (an insecure origin): nothing to do; the text is on the page.
  }
}

// MARK: Editor

function addTargetRow(target = { name: "", url: "", enabled: true, hasKey: false }) {
  const row = $("#target-row").content.firstElementChild.cloneNode(true);
  const index = $("#edit-targets").children.length;
  $(".t-name", row).value = target.name;
  $(".t-url", row).value = target.url;
  $(".t-enabled", row).checked = target.enabled;
  $(".t-key", row).placeholder = target.hasKey ? "unchanged (type to replace)" : "the target's stream key";
  $(".t-remove", row).addEventListener("click", () => row.remove());
  $(".t-remove", row).setAttribute("aria-label", `Remove target ${target.name || index + 1}`);
  $("#edit-targets").append(row);
  return row;
}

function openEditor(view) {
  state.editing = view;
  clearErrors();
  $("#editor-title").textContent = view ? `Edit ${view.name}` : "New stream";
  $("#edit-name").value = view ? view.name : "";
  $("#edit-app").value = view ? view.app : "live";
  $("#edit-keyframe").value = view && view.maxKeyframeIntervalSeconds != null ? view.maxKeyframeIntervalSeconds : "";
  $("#edit-targets").replaceChildren();
  for (const target of view ? view.targets : []) addTargetRow(target);
  $("#delete-stream").hidden = !view;
  $("#editor").showModal();
  $("#edit-name").focus();
}

function clearErrors() {
  for (const element of document.querySelectorAll("#edit-form .field-error")) element.textContent = "";
  $("#edit-error").textContent = "";
}

function showFieldErrors(error) {
  const rows = [...$("#edit-targets").children];
  let placed = false;
  for (const { field, message } of error.fields) {
    const target = /^spec\.targets\[(\d+)\]\.(name|url|key|streamKeySecretRef.*)$/.exec(field);
    let element = null;
    if (target && rows[Number(target[1])]) {
      const part = target[2].startsWith("streamKeySecretRef") ? "key" : target[2];
      element = $(`.t-${part}-error`, rows[Number(target[1])]);
    } else {
      element = document.querySelector(`#edit-form .field-error[data-field="${field}"]`);
    }
    if (element) {
      element.textContent = message;
      placed = true;
    }
  }
  if (!placed || error.fields.length === 0) $("#edit-error").textContent = error.message;
}

$("#new-stream").addEventListener("click", () => openEditor(null));
$("#add-target").addEventListener("click", () => $(".t-name", addTargetRow()).focus());
$("#cancel-edit").addEventListener("click", () => $("#editor").close());

$("#edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = {
    name: $("#edit-name").value.trim(),
    app: $("#edit-app").value.trim(),
    maxKeyframeIntervalSeconds: $("#edit-keyframe").value === "" ? null : Number($("#edit-keyframe").value),
    targets: [...$("#edit-targets").children].map((row) => {
      const target = {
        name: $(".t-name", row).value.trim(),
        url: $(".t-url", row).value.trim(),
        enabled: $(".t-enabled", row).checked,
      };
      const value = $(".t-key", row).value;
      if (value) target.key = value;
      return target;
    }),
  };
  try {
    const editing = state.editing;
    const view = editing ? await api("PUT", streamPath(editing), body) : await api("POST", "streams", body);
    if (editing && key(editing) !== key(view)) removeCard(key(editing));
    render(view);
    $("#editor").close();
  } catch (error) {
    if (error instanceof APIError) showFieldErrors(error);
    else $("#edit-error").textContent = error.message;
  }
});

$("#delete-stream").addEventListener("click", async () => {
  const view = state.editing;
  if (!view || !confirm(`Delete the stream ${view.name} and its keys?`)) return;
  try {
    await api("DELETE", streamPath(view));
    removeCard(key(view));
    $("#editor").close();
  } catch (error) {
    $("#edit-error").textContent = error.message;
  }
});

// MARK: Start

api("GET", "session")
  .then(signedIn)
  .catch(() => showSignIn());
