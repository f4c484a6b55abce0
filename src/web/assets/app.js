// callgrade web app: the little the server cannot do. Dates and times are sent in UTC and
// shown here in the reader's own time zone and locale.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const lang = document.documentElement.lang || "en";
  const format = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  for (const el of document.querySelectorAll("time[data-local]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.title = el.textContent;
      el.textContent = format.format(when);
    }
  }
});
