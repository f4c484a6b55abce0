// The upload page: files chosen or dropped are sent one by one (XMLHttpRequest, for its upload
// progress events) with the form's fields; each gets a progress bar and the server's answer.
"use strict";
(() => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-list");
  const rowTemplate = document.getElementById("upload-row");
  const limit = parseFloat(form.dataset.limitMb) * 1024 * 1024;
  const texts = JSON.parse(document.getElementById("upload-texts").textContent);
  let queue = [];
  let busy = false;

  function fields() {
    const data = new FormData();
    for (const el of form.querySelectorAll(".meta-fields [name]")) {
      let value = el.value.trim();
      if (!value) continue;
      // datetime-local has no zone: it is the user's local time.
      if (el.name === "started_at") value = new Date(value).toISOString();
      data.append(el.name, value);
    }
    return data;
  }

  function addRow(file) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.querySelector(".name").textContent = file.name;
    row.querySelector(".state").textContent = texts.waiting;
    list.appendChild(row);
    return row;
  }

  function finish(row, ok, message, url) {
    row.classList.add(ok ? "ok" : "refused");
    const state = row.querySelector(".state");
    state.textContent = message + " ";
    if (url) {
      const a = document.createElement("a");
      a.href = url;
      a.textContent = texts.open;
      state.appendChild(a);
    }
  }

  function send(file, row) {
    return new Promise((resolve) => {
      if (file.size > limit) {
        finish(row, false, form.dataset.tooLarge);
        return resolve();
      }
      const data = fields();
      data.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      const bar = row.querySelector("progress");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.upload.addEventListener("load", () => (row.querySelector(".state").textContent = texts.checking));
      xhr.addEventListener("load", () => {
        let answer = null;
        try {
          answer = JSON.parse(xhr.responseText);
        } catch (_) {}
        bar.value = 100;
        if (answer) finish(row, answer.ok, answer.message, answer.url);
        else finish(row, false, `${texts.failed} (HTTP ${xhr.status})`);
        resolve();
      });
      xhr.addEventListener("error", () => {
        finish(row, false, texts.network);
        resolve();
      });
      xhr.open("POST", "/upload");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.send(data);
      row.querySelector(".state").textContent = texts.sending;
    });
  }

  async function run() {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const [file, row] = queue.shift();
      await send(file, row);
    }
    busy = false;
  }

  function take(files) {
    const manager = document.getElementById("manager_id");
    if (manager && !manager.value.trim()) {
      manager.focus();
      manager.reportValidity();
      return;
    }
    for (const file of files) queue.push([file, addRow(file)]);
    run();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.files.length > 0) take(Array.from(input.files));
    input.value = "";
  });
  input.addEventListener("change", () => {
    if (input.files.length > 0) take(Array.from(input.files));
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length > 0) take(Array.from(e.dataTransfer.files));
  });
})();
