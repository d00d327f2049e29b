// The generate form. htmx swaps in the fields that follow the chosen model (the server switches
// the image field off, with <fieldset disabled>, while the model takes no image); this script adds
// what htmx attributes cannot say under the Content-Security-Policy (no inline script, no eval):
// a preview of the chosen image, and a way to remove it.
(function () {
  "use strict";

  var previewUrl = null;

  function picker() {
    return document.getElementById("image-picker");
  }

  function fileInput() {
    var box = picker();
    return box ? box.querySelector("input[type=file]") : null;
  }

  // Show the chosen file beside the input, or nothing once it is removed. Object URLs are
  // revoked as soon as they are replaced, so choosing again and again leaks nothing.
  function showPreview() {
    var box = picker();
    var input = fileInput();
    if (!box || !input) return;
    var preview = box.querySelector("[data-image-preview]");
    var remove = box.querySelector("[data-remove-image]");
    if (previewUrl) {
      URL.revokeObjectURL(previewUrl);
      previewUrl = null;
    }
    preview.replaceChildren();
    var file = input.files && input.files[0];
    if (remove) remove.hidden = !file;
    if (!file) return;
    previewUrl = URL.createObjectURL(file);
    var image = document.createElement("img");
    image.alt = "Preview of your image";
    image.className = "image-preview__img";
    image.addEventListener("error", function () {
      var note = document.createElement("p");
      note.className = "help";
      note.textContent = "This file cannot be shown here; the studio will check it when you press Generate.";
      image.replaceWith(note);
    });
    image.src = previewUrl;
    preview.appendChild(image);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("#image-picker input[type=file]")) {
      // A file of one's own replaces the earlier video's image.
      var reuse = document.getElementById("id_use_earlier_image");
      if (reuse && target.files.length) reuse.checked = false;
      showPreview();
    } else if (target.id === "id_use_earlier_image" && target.checked) {
      var input = fileInput();
      if (input && input.files.length) {
        input.value = "";
        showPreview();
      }
    }
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-remove-image]")) return;
    var input = fileInput();
    if (!input) return;
    input.value = "";
    showPreview();
    input.focus();
  });

  // The model select's request failed (the model is gone, or the network): say so where the
  // estimate is, and leave the fields as they were; the server checks everything at submit.
  function optionsFailed(event) {
    if (!event.detail.elt || event.detail.elt.id !== "id_model") return;
    var facts = document.getElementById("model-facts");
    if (!facts) return;
    var xhr = event.detail.xhr;
    var plain = xhr && /^text\/plain/.test(xhr.getResponseHeader("Content-Type") || "");
    var message = document.createElement("p");
    message.className = "model-facts__warning";
    message.setAttribute("role", "alert");
    message.textContent = plain && xhr.responseText
      ? xhr.responseText
      : "Could not load this model's settings. Check your connection and choose the model again.";
    facts.replaceChildren(message);
  }
  document.addEventListener("htmx:responseError", optionsFailed);
  document.addEventListener("htmx:sendError", optionsFailed);

  // A file the browser kept on going back to the page.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showPreview);
  } else {
    showPreview();
  }
})();
