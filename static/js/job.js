// The job page: the running timer, the progress toward the usual wait, and the opt-in browser
// notification. The status fragment (#job-status) is replaced whenever a poll brings news (a poll
// that finds nothing new gets 204 and leaves it as it is), so nothing here keeps a reference to
// it: each step looks it up again, and state that must outlive a swap (the opt-in) lives in
// sessionStorage. Between swaps only this script moves the timer and the bar.
(function () {
  "use strict";

  var STATUS_ID = "job-status";
  // When this browser first saw each running fragment: the timer counts from the server's clock
  // at render (data-server-now) plus the time since, so a wrong clock on this computer is harmless.
  var seenAt = new WeakMap();

  // The timer's words come from the server (jobs/wording.py, elapsed_words): the fragment carries
  // them for every second from its render on, in data-elapsed-words, "|" between them.
  function elapsedWords(report, elapsed) {
    var words = (report.getAttribute("data-elapsed-words") || "").split("|");
    var index = elapsed - parseInt(report.getAttribute("data-elapsed-from"), 10);
    if (isNaN(index) || index < 0) return "";
    return words[Math.min(index, words.length - 1)];
  }

  function tick() {
    var report = document.querySelector("#" + STATUS_ID + " [data-started-at]");
    if (!report) return;
    var startedAt = Date.parse(report.getAttribute("data-started-at"));
    var serverNow = Date.parse(report.getAttribute("data-server-now"));
    if (isNaN(startedAt) || isNaN(serverNow)) return; // keep the server's text
    if (!seenAt.has(report)) seenAt.set(report, performance.now());
    var elapsed = Math.max(
      0,
      Math.floor((serverNow - startedAt + performance.now() - seenAt.get(report)) / 1000)
    );

    var text = report.querySelector("[data-elapsed]");
    var words = elapsedWords(report, elapsed);
    if (text && words) text.textContent = words;

    var typical = parseInt(report.getAttribute("data-typical-wait"), 10);
    var bar = report.querySelector("[data-wait-bar]");
    if (!bar || !typical) return;
    var longer = elapsed >= typical;
    // Past the usual wait the bar turns indeterminate: it would be a lie to keep it full and
    // still moving, or to show how much is "left".
    if (longer) bar.removeAttribute("value");
    else bar.value = elapsed;
    report.querySelectorAll("[data-when]").forEach(function (line) {
      line.hidden = (line.getAttribute("data-when") === "longer") !== longer;
    });
  }

  // The notification opt-in ---------------------------------------------------------------------

  function optInKey(status) {
    return "notify:" + status.getAttribute("data-job-id");
  }

  function showNotifyState(status) {
    var box = status.querySelector("[data-notify]");
    if (!box || !("Notification" in window)) return;
    var state = "offer";
    if (Notification.permission === "denied") state = "blocked";
    else if (sessionStorage.getItem(optInKey(status))) state = "on";
    box.hidden = false;
    box.querySelector("[data-notify-button]").hidden = state !== "offer";
    box.querySelectorAll("[data-notify-state]").forEach(function (line) {
      line.hidden = line.getAttribute("data-notify-state") !== state;
    });
  }

  function askToNotify(button) {
    var status = document.getElementById(STATUS_ID);
    if (!status) return;
    var answered = false;
    var remember = function (permission) {
      if (answered) return; // browsers that return a promise may also call the callback
      answered = true;
      var current = document.getElementById(STATUS_ID) || status; // a poll may have swapped it
      if (permission === "granted") sessionStorage.setItem(optInKey(current), "1");
      button.disabled = false; // if they dismissed the question, they may ask again
      showNotifyState(current); // the live region reads the new line out
    };
    button.disabled = true;
    if (Notification.permission === "granted") {
      remember("granted");
      return;
    }
    // Older Safari takes a callback and returns nothing; current browsers return a promise.
    var asked = Notification.requestPermission(remember);
    if (asked && typeof asked.then === "function") asked.then(remember);
  }

  function notifyIfFinished(status) {
    if (!status.hasAttribute("data-terminal")) return;
    var key = optInKey(status);
    if (!sessionStorage.getItem(key)) return;
    sessionStorage.removeItem(key); // one notification per job, however the page is revisited
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    // Someone looking at the page sees the result there; the notification is for the other tab.
    if (document.visibilityState !== "hidden") return;
    var outcome = status.getAttribute("data-outcome");
    if (outcome !== "succeeded" && outcome !== "failed") return; // canceled: they did it themselves
    var title = outcome === "succeeded" ? "Your video is ready" : "Your video failed";
    var notification = new Notification(title, {
      body: status.getAttribute("data-notify-body") || "",
      tag: key,
    });
    notification.onclick = function () {
      window.focus();
      notification.close();
    };
  }

  // Wiring ----------------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-notify-button]");
    if (button) askToNotify(button);
  });

  // afterSwap fires on the new fragment in the same task as the swap, before the browser paints,
  // so the notify button and the timer never flash their server-rendered defaults.
  document.addEventListener("htmx:afterSwap", function (event) {
    var status = event.target;
    if (!status || status.id !== STATUS_ID) return;
    showNotifyState(status);
    tick();
    notifyIfFinished(status);
  });

  function start() {
    var status = document.getElementById(STATUS_ID);
    if (!status) return;
    showNotifyState(status);
    tick();
    setInterval(tick, 1000);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
