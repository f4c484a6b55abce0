// callgrade web app: the little the server cannot do. Dates and times are sent in UTC and
// shown here in the reader's own time zone and locale.
"use strict";
(() => {
  const lang = document.documentElement.lang || "en";
  const format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  function localize(root) {
    for (const el of root.querySelectorAll("time[data-local]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(when.getTime())) {
        el.title = el.textContent;
        el.textContent = format.format(when);
      }
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    localize(document);
    // A page showing work in progress (a call in the pipeline, a busy queue) looks again.
    const pending = document.querySelector("[data-refresh]");
    if (pending) setTimeout(() => location.reload(), 1000 * parseFloat(pending.dataset.refresh));
  });
  // Parts replaced by htmx (the live calls list) get the same treatment.
  document.addEventListener("htmx:afterSwap", (event) => localize(event.detail.elt.parentNode || document));
})();
