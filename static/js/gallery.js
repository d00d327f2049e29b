// My videos: "Select all on this page", a count of what is ticked, and opening the native <dialog>
// into which htmx brings the server's confirmation of a bulk delete. The Content-Security-Policy
// allows no inline script, so it lives here. Without it the page still works: "Delete selected…"
// then leads to a confirmation page.
(function () {
  "use strict";

  function cards() {
    return Array.prototype.slice.call(
      document.querySelectorAll(
        'input[type="checkbox"][name="job"][form="gallery-bulk"], ' +
        'input[type="checkbox"][name="group"][form="gallery-bulk"]'
      )
    );
  }

  function ticked() {
    return cards().filter(function (box) { return box.checked; });
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

  // The server's question has come into the dialog: ask it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target;
    if (dialog && dialog.id === "confirm-delete" && !dialog.open) dialog.showModal();
  });

  document.addEventListener("DOMContentLoaded", enhance);
  // The filters and pages swap #gallery; a card swaps itself when its job moves on.
  document.addEventListener("htmx:afterSettle", enhance);
})();
