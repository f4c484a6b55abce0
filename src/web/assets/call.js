// The call page: waveform (wavesurfer.js over the page's own <audio>, drawn from the server's
// peaks), the playing turn highlighted, turns and verified quotes that seek, find-in-call and
// the keyboard. Everything else on the page works without this script.
"use strict";
(() => {
  const player = document.querySelector(".player");
  const audio = document.getElementById("audio");
  if (!player || !audio) return;
  const nonce = document.currentScript ? document.currentScript.nonce : "";
  const turns = Array.from(document.querySelectorAll("#turns .turn"));
  const starts = turns.map((t) => parseFloat(t.dataset.start));
  const ends = turns.map((t) => parseFloat(t.dataset.end));
  const playButton = document.getElementById("play");
  let current = -1;
  let followPlayback = true;

  // The turn playing at `t`: the last one started by then, if it has not ended long before.
  function turnAt(t) {
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= t + 0.05) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found >= 0 && t <= ends[found] + 1.0 ? found : -1;
  }

  function highlight(index, scroll) {
    if (index === current) return;
    if (current >= 0) {
      turns[current].classList.remove("playing");
      turns[current].removeAttribute("aria-current");
    }
    current = index;
    if (index < 0) return;
    const turn = turns[index];
    turn.classList.add("playing");
    turn.setAttribute("aria-current", "true");
    if (scroll) turn.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function seek(t, scroll = true) {
    if (!Number.isFinite(t)) return;
    audio.currentTime = Math.max(0, t);
    highlight(turnAt(t), scroll);
  }

  audio.addEventListener("timeupdate", () => highlight(turnAt(audio.currentTime), followPlayback));
  const showState = () => {
    if (playButton) playButton.textContent = audio.paused ? playButton.dataset.play : playButton.dataset.pause;
  };
  if (playButton) {
    playButton.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  }
  audio.addEventListener("play", showState);
  audio.addEventListener("pause", showState);

  document.addEventListener("click", (event) => {
    const seekEl = event.target.closest("[data-seek]");
    if (seekEl) {
      event.preventDefault();
      seek(parseFloat(seekEl.dataset.seek));
      return;
    }
    const skip = event.target.closest("[data-skip]");
    if (skip) {
      seek(audio.currentTime + parseFloat(skip.dataset.skip), false);
      return;
    }
    const turn = event.target.closest("#turns .turn");
    if (turn && !window.getSelection().toString()) seek(parseFloat(turn.dataset.start), false);
  });
  // Scrolling the transcript by hand stops it following playback until the next seek.
  const list = document.getElementById("turns");
  if (list) list.addEventListener("wheel", () => (followPlayback = false), { passive: true });
  audio.addEventListener("seeked", () => (followPlayback = true));

  const rate = document.getElementById("rate");
  if (rate) rate.addEventListener("change", () => (audio.playbackRate = parseFloat(rate.value)));

  // Space plays and pauses, arrows seek 5 s; not while typing or on a control of its own.
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const tag = event.target.tagName;
    if (["INPUT", "SELECT", "TEXTAREA", "BUTTON", "AUDIO", "SUMMARY", "A"].includes(tag)) return;
    if (event.key === " ") {
      event.preventDefault();
      audio.paused ? audio.play() : audio.pause();
    } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      seek(audio.currentTime + (event.key === "ArrowLeft" ? -5 : 5), false);
    } else if (event.key === "Enter" && event.target.classList.contains("turn")) {
      seek(parseFloat(event.target.dataset.start), false);
    }
  });

  // Find in call: marks the turns that contain the text (ё = е, any case); Enter jumps on.
  const find = document.getElementById("find");
  const findCount = document.getElementById("find-count");
  const fold = (s) => s.toLocaleLowerCase().replaceAll("ё", "е");
  const texts = turns.map((t) => fold(t.textContent));
  let matches = [];
  let matchAt = -1;
  if (find) {
    find.addEventListener("input", () => {
      const q = fold(find.value.trim());
      matches = [];
      turns.forEach((t, i) => {
        const hit = q.length > 0 && texts[i].includes(q);
        t.classList.toggle("match", hit);
        if (hit) matches.push(i);
      });
      matchAt = -1;
      findCount.textContent = q ? String(matches.length) : "";
    });
    find.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || matches.length === 0) return;
      event.preventDefault();
      matchAt = (matchAt + 1) % matches.length;
      const i = matches[matchAt];
      seek(starts[i]);
      findCount.textContent = `${matchAt + 1}/${matches.length}`;
    });
  }

  // Talk-share bar widths (set here: the page's CSP allows no inline styles).
  for (const el of document.querySelectorAll("[data-width]")) el.style.width = `${el.dataset.width}%`;

  // A search hit or a link with ?t= opens the call at that moment.
  const start = parseFloat(player.dataset.start);
  if (Number.isFinite(start)) {
    const go = () => seek(start);
    if (audio.readyState >= 1) go();
    else audio.addEventListener("loadedmetadata", go, { once: true });
  }

  // The waveform, from the server's peaks: one lane per channel.
  const container = document.getElementById("waveform");
  if (!container || typeof WaveSurfer === "undefined") return;
  fetch(container.dataset.peaks, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(String(r.status)))))
    .then((peaks) => {
      const lanes = peaks.channels.length;
      // Colours follow the speaker, as in the transcript (a call whose channels are
      // client,manager has the client's colour on top).
      const blue = { waveColor: "#9db4ee", progressColor: "#2f5bd3" };
      const orange = { waveColor: "#f2c48d", progressColor: "#b86a0b" };
      const bySpeaker = { manager: blue, client: orange };
      const speakers = (container.dataset.speakers || "").split(",");
      const colors = [0, 1].map((i) => bySpeaker[speakers[i]] || (i ? orange : blue));
      WaveSurfer.create({
        container,
        media: audio,
        peaks: peaks.channels,
        duration: peaks.duration_s,
        height: lanes > 1 ? 56 : 80,
        splitChannels: lanes > 1 ? colors.slice(0, lanes) : undefined,
        waveColor: colors[0].waveColor,
        progressColor: colors[0].progressColor,
        cursorColor: "#1d2433",
        barWidth: 2,
        barGap: 1,
        barRadius: 1,
        normalize: true,
        dragToSeek: true,
        cspNonce: nonce,
      });
      container.classList.add("ready");
    })
    .catch(() => container.classList.add("unavailable"));
})();
