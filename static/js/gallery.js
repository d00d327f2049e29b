// My videos: "Select all on this page", a count of what is ticked, and a native <dialog> that
// confirms a bulk delete. The Content-Security-Policy allows no inline script, so it lives here.
// Without it the page still works: "Delete selected…" then leads to a confirmation page.
(function () {
  "use strict";

  function cards() {
    return Array.prototype.slice.call(
      document.querySelectorAll('input[type="checkbox"][name="job"][form="gallery-bulk"]')
    );
  }

  function ticked() {
    return cards().filter(function (box) { return box.checked; });
  }

  function plural(count, one, many) {
    return count + " " + (count === 1 ? one : many);
  }

  function refresh() {
    var all = cards();
    var chosen = ticked();
    var selectAll = document.getElementById("select-all");
    if (selectAll) {
      selectAll.checked = all.length > 0 && chosen.length === all.length;
      selectAll.indeterminate = chosen.length > 0 && chosen.length < all.length;
    }
    var count = document.querySelector("[data-selected-count]");
    if (count) count.textContent = chosen.length ? chosen.length + " selected" : "";
  }

  // "Select all" needs this script, so it is hidden until the script runs.
  function enhance() {
    document.querySelectorAll("[data-select-all]").forEach(function (element) {
      element.hidden = false;
    });
    refresh();
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      cards().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-all" || target.name === "job") refresh();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm-delete]");
    if (!button) return;
    var dialog = document.getElementById("confirm-delete");
    var chosen = ticked();
    // Nothing ticked: let the form go, and the server says what to do.
    if (!dialog || typeof dialog.showModal !== "function" || chosen.length === 0) return;
    event.preventDefault();
    var live = chosen.filter(function (box) { return box.closest("[data-live]"); }).length;
    var finished = chosen.length - live;
    var title = dialog.querySelector("[data-confirm-title]");
    var summary = dialog.querySelector("[data-confirm-summary]");
    if (finished === 0) {
      title.textContent = "Nothing to delete yet";
      summary.textContent = "The selected jobs are still in progress. A job can be deleted once it has finished.";
    } else {
      title.textContent = "Delete " + plural(finished, "video", "videos") + "?";
      summary.textContent =
        (finished === 1 ? "Its video and prompt are" : "Their videos and prompts are") +
        " removed for good. What " + (finished === 1 ? "it" : "they") + " cost stays on record." +
        (live ? " " + plural(live, "job is", "jobs are") + " still in progress and will be skipped." : "");
    }
    dialog.querySelector('button[name="confirmed"]').hidden = finished === 0;
    dialog.showModal();
  });

  document.addEventListener("DOMContentLoaded", enhance);
  // The filters and pages swap #gallery; a card swaps itself when its job moves on.
  document.addEventListener("htmx:afterSettle", enhance);
})();
