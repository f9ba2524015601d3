//===----------------------------------------------------------------------===//
//
// This source file is part of the liverelay open source project
//
// Copyright (c) 2026 the liverelay project authors
// Licensed under Apache License v2.0
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

/// The preview page: one HTML file with plain JavaScript (no build step, no third-party script).
///
/// Served at `/preview/NAME/`, it reads `status` and plays `live.mp4` (init segment and fragments, as they are
/// written) through Media Source Extensions, follows the live edge, shows the stream's state and starts over when
/// the stream restarts. Every URL is relative, so the page works behind an ingress that serves it under a path
/// prefix.
///
/// With `?report=URL` it also POSTs its state as JSON (`text/plain`, no CORS preflight) to `URL` every half second,
/// and with `&capture=1` a PNG of the current frame: tests use it to read what the browser plays.
public enum PreviewPage {
    public static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>liverelay preview</title>
        <style>
        html, body { margin: 0; background: #111; color: #eee; font: 14px system-ui, sans-serif; }
        video { display: block; width: 100%; max-height: 90vh; background: #000; }
        #bar { display: flex; gap: 12px; padding: 8px 12px; align-items: baseline; }
        #state { font-weight: bold; text-transform: uppercase; }
        .live { color: #5c5; } .waiting { color: #cc5; } .ended { color: #aaa; } .error { color: #f66; }
        #detail { color: #bbb; }
        </style>
        </head>
        <body>
        <video id="video" muted autoplay playsinline></video>
        <div id="bar"><span id="state" class="waiting">waiting</span><span id="detail"></span></div>
        <script>
        "use strict";
        (() => {
          const video = document.getElementById("video");
          const stateElement = document.getElementById("state");
          const detailElement = document.getElementById("detail");
          const parameters = new URLSearchParams(location.search);
          const reportURL = parameters.get("report");
          const capture = parameters.get("capture") === "1";
          const view = { state: "waiting", detail: "", generation: 0, mimeType: null, supported: null,
                         error: null, sessions: 0, appended: 0 };
          window.preview = view;
          const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
          const errorStates = new Set(["unsupported", "failed", "error"]);

          function show(state, detail) {
            view.state = state;
            view.detail = detail || "";
            stateElement.textContent = state;
            stateElement.className = errorStates.has(state) ? "error" : state;
            detailElement.textContent = view.detail;
            document.title = "preview: " + state;
          }

          async function status() {
            try {
              const response = await fetch("status", { cache: "no-store" });
              return response.ok ? await response.json() : null;
            } catch (error) {
              return null;
            }
          }

          function followLiveEdge() {
            const ranges = video.buffered;
            if (ranges.length === 0) return;
            const start = ranges.start(ranges.length - 1);
            const end = ranges.end(ranges.length - 1);
            // Join at the live edge, and jump there again after a gap or a stall.
            if (video.currentTime < start || end - video.currentTime > 1.5) {
              video.currentTime = Math.max(start, end - 0.3);
            }
            if (video.paused) video.play().catch(() => {});
          }

          async function play(current) {
            const mediaSource = new MediaSource();
            const objectURL = URL.createObjectURL(mediaSource);
            video.src = objectURL;
            await new Promise((resolve) => mediaSource.addEventListener("sourceopen", resolve, { once: true }));
            URL.revokeObjectURL(objectURL);
            const buffer = mediaSource.addSourceBuffer(current.mimeType);
            const abort = new AbortController();
            const response = await fetch("live.mp4", { cache: "no-store", signal: abort.signal });
            if (!response.ok || !response.body) throw new Error("live.mp4 answered " + response.status);
            const reader = response.body.getReader();
            view.sessions += 1;
            show("live", (current.videoCodec || "") + (current.width ? " " + current.width + "x" + current.height : ""));
            const waitForUpdate = () => new Promise((resolve, reject) => {
              const done = () => { buffer.removeEventListener("error", failed); resolve(); };
              const failed = () => { buffer.removeEventListener("updateend", done); reject(new Error("the browser cannot decode this stream")); };
              buffer.addEventListener("updateend", done, { once: true });
              buffer.addEventListener("error", failed, { once: true });
            });
            try {
              for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                const appended = waitForUpdate();
                buffer.appendBuffer(value);
                await appended;
                view.appended += value.byteLength;
                if (video.error) throw new Error("video error " + video.error.code + ": " + video.error.message);
                followLiveEdge();
                const ranges = video.buffered;
                if (ranges.length && video.currentTime - ranges.start(0) > 60) {
                  const removed = waitForUpdate();
                  buffer.remove(0, video.currentTime - 30);
                  await removed;
                }
              }
            } finally {
              abort.abort();
            }
            if (mediaSource.readyState === "open") {
              try { mediaSource.endOfStream(); } catch (error) { }
            }
          }

          async function run() {
            for (;;) {
              const current = await status();
              if (!current) {
                show("waiting", "the relay does not answer");
                await sleep(1000);
                continue;
              }
              view.generation = current.generation;
              view.mimeType = current.mimeType || null;
              view.error = current.error || null;
              if (current.state === "live" && current.mimeType) {
                view.supported = "MediaSource" in window && MediaSource.isTypeSupported(current.mimeType);
                if (!view.supported) {
                  show("unsupported", "this browser cannot play " + current.mimeType + (current.error ? " (" + current.error + ")" : ""));
                  await sleep(2000);
                  continue;
                }
                try {
                  await play(current);
                } catch (error) {
                  show("error", String(error && error.message || error));
                  await sleep(1000);
                }
                continue;
              }
              const details = { waiting: "waiting for the stream", ended: "the stream ended" };
              show(current.state, current.error || details[current.state] || "");
              await sleep(500);
            }
          }

          function frame() {
            if (!capture || video.readyState < 2 || !video.videoWidth) return null;
            const canvas = document.createElement("canvas");
            canvas.width = video.videoWidth;
            canvas.height = video.videoHeight;
            const context = canvas.getContext("2d");
            context.drawImage(video, 0, 0);
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let sum = 0;
            for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
            return { png: canvas.toDataURL("image/png"), brightness: sum / (pixels.length / 4) / 3 };
          }

          async function report() {
            for (;;) {
              await sleep(500);
              const snapshot = Object.assign({}, view, {
                currentTime: video.currentTime, paused: video.paused, readyState: video.readyState,
                videoWidth: video.videoWidth, videoHeight: video.videoHeight,
                decodedFrames: video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : null,
                frame: frame(),
              });
              try {
                await fetch(reportURL, { method: "POST", mode: "no-cors", body: JSON.stringify(snapshot) });
              } catch (error) { }
            }
          }

          run();
          if (reportURL) report();
        })();
        </script>
        </body>
        </html>
        """#
}
