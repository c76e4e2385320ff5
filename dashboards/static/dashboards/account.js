// Copy buttons for license keys. They stay hidden without JavaScript, where the key is plain
// selectable text; they are revealed again after each htmx swap of the order.
(function () {
  "use strict";

  function reveal(root) {
    root.querySelectorAll("button.copy[hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(button) {
    var key = document.getElementById(button.dataset.copy);
    if (!key) return;
    var text = key.textContent.trim();
    var done = function (words) {
      button.textContent = words;
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    // The Clipboard API needs https (or localhost); elsewhere select the key for Ctrl+C.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { done("Copied"); },
        function () { selectText(key); done("Selected"); }
      );
    } else {
      selectText(key);
      done(document.execCommand && document.execCommand("copy") ? "Copied" : "Selected");
    }
  }

  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:load", function (event) { reveal(event.target); });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) copy(button);
  });
})();
