// The bench page's live region: re-read it from the server after every station event.
// Plain EventSource reconnects by itself; every text comes from the server's catalogs.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) { return; }
  var src = live.getAttribute("data-src");
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          var section = live.firstElementChild;
          if (section) { live.setAttribute("data-version", section.getAttribute("data-version")); }
        }
      })
      .catch(function () { /* the stream reconnects; the next event refreshes */ })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource("/events");
  // "open" once the stream is live, "retrying" while EventSource reconnects (styled as stale)
  events.onopen = function () { live.setAttribute("data-stream", "open"); };
  events.onerror = function () { live.setAttribute("data-stream", "retrying"); };
  events.onmessage = function (e) {
    if (e.data !== live.getAttribute("data-version")) { refresh(); }
  };
})();
