// The studio's only script besides htmx. The Content-Security-Policy allows no inline script and
// no eval, so behaviour that htmx would express as an attribute expression lives here.
(function () {
  "use strict";

  // Polls while the tab is hidden are thinned to one every HIDDEN_POLL_MS: a background tab still
  // learns that its job finished, without asking the server every 2 seconds.
  var HIDDEN_POLL_MS = 30000;
  // Keyed by URL, not element: each answer replaces the polling element with a new one.
  var lastPoll = new Map();

  document.addEventListener("htmx:beforeRequest", function (event) {
    var element = event.detail.elt;
    if (!element.hasAttribute("data-poll")) return;
    var url = element.getAttribute("hx-get");
    var now = Date.now();
    if (document.visibilityState === "hidden" && now - (lastPoll.get(url) || 0) < HIDDEN_POLL_MS) {
      event.preventDefault();
      return;
    }
    lastPoll.set(url, now);
  });
})();
