// Live parts of /mgmt poll only while their tab is in front: a hidden tab skips its polls, and
// one that comes back refreshes at once ("visible-again", in each poller's hx-trigger).
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.detail.elt.hasAttribute("data-poll")) event.preventDefault();
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.dispatchEvent(new CustomEvent("visible-again"));
  });
})();
