// The CRM import page: the files chosen or dropped are sent one by one in the contract's order
// (managers first: other files refer to them), each with a progress bar, then the server's
// report: row counts and a table of the refused rows (line, column, reason).
"use strict";
(() => {
  const form = document.getElementById("import-form");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("import-list");
  const rowTemplate = document.getElementById("import-row");
  const limit = parseFloat(form.dataset.limitMb) * 1024 * 1024;
  const order = form.dataset.order.split(",");
  const texts = JSON.parse(document.getElementById("import-texts").textContent);
  let busy = false;
  let queue = [];

  const entityOf = (name) => name.toLowerCase().replace(/\.csv$/, "").trim();
  const rank = (file) => {
    const i = order.indexOf(entityOf(file.name));
    return i < 0 ? order.length : i;
  };

  function addRow(file) {
    const row = rowTemplate.content.firstElementChild.cloneNode(true);
    row.querySelector(".name").textContent = file.name;
    row.querySelector(".state").textContent = texts.waiting;
    list.appendChild(row);
    return row;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : ""));
  }

  function showReport(row, report) {
    const box = row.querySelector(".report");
    const p = document.createElement("p");
    p.textContent = fill(texts.counts, {
      rows: report.rows, inserted: report.inserted, updated: report.updated,
      unchanged: report.unchanged, rejected: report.rejected,
    });
    box.appendChild(p);
    if (!report.errors || report.errors.length === 0) return;
    const wrap = document.createElement("div");
    wrap.className = "table-wrap errors";
    const table = document.createElement("table");
    table.className = "calls import-errors";
    const head = table.createTHead().insertRow();
    for (const h of [texts.line, texts.column, texts.reason]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const e of report.errors) {
      const tr = body.insertRow();
      tr.insertCell().textContent = e.line;
      tr.insertCell().textContent = e.column || "—";
      // The reason in the page's language where the server gave a code; its English words
      // otherwise (reports stored before codes were kept).
      const worded = e.code && texts.problems && texts.problems[e.code];
      tr.insertCell().textContent = worded
        ? fill(worded, { value: e.value || "", column: e.column || "", expected: e.expected || "" })
        : e.reason;
    }
    wrap.appendChild(table);
    box.appendChild(wrap);
    if (report.rejected > report.errors.length) {
      const more = document.createElement("p");
      more.className = "small muted";
      more.textContent = fill(texts.more, { shown: report.errors.length, all: report.rejected });
      box.appendChild(more);
    }
  }

  function finish(row, kind, message) {
    row.classList.add(kind);
    row.querySelector(".state").textContent = message;
  }

  function send(file, row) {
    return new Promise((resolve) => {
      const entity = entityOf(file.name);
      if (order.indexOf(entity) < 0) {
        finish(row, "refused", fill(texts.unknown, { files: order.join(".csv, ") + ".csv" }));
        return resolve();
      }
      if (file.size > limit) {
        finish(row, "refused", texts.too_large);
        return resolve();
      }
      const data = new FormData();
      data.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      const bar = row.querySelector("progress");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      });
      xhr.upload.addEventListener("load", () => {
        // Sent: the server now reads and writes the rows.
        bar.removeAttribute("value");
        row.querySelector(".state").textContent = texts.reading;
      });
      xhr.addEventListener("load", () => {
        bar.value = 100;
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
        if ((xhr.status === 200 || xhr.status === 422) && body && "rows" in body) {
          const clean = body.committed && body.rejected === 0;
          finish(row, clean ? "ok" : (body.committed ? "partial" : "refused"), body.committed ? texts.done : texts.refused);
          showReport(row, body);
        } else {
          const message = body && body.error ? body.error.message : texts.failed + " (" + xhr.status + ")";
          finish(row, "refused", message);
        }
        resolve();
      });
      xhr.addEventListener("error", () => { finish(row, "refused", texts.failed); resolve(); });
      const strict = document.getElementById("strict").checked ? "?strict=true" : "";
      xhr.open("POST", "/import/" + encodeURIComponent(entity) + strict);
      row.querySelector(".state").textContent = texts.sending;
      xhr.send(data);
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
    // The last-import table is the server's: show it as it is now.
    const fresh = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (fresh.ok) {
      const doc = new DOMParser().parseFromString(await fresh.text(), "text/html");
      const table = doc.getElementById("last-imports");
      if (table) document.getElementById("last-imports").replaceWith(table);
    }
  }

  function take(files) {
    const sorted = Array.from(files).sort((a, b) => rank(a) - rank(b));
    for (const f of sorted) queue.push([f, addRow(f)]);
    run();
  }

  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    take(e.dataTransfer.files);
  });
})();
