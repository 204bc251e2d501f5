// {% pagecall_room %}: shows the fallback when the meeting's frame fails or never loads.
(function () {
  "use strict";
  var LOAD_TIMEOUT_MS = 20000;
  document.querySelectorAll("[data-pagecall-room]").forEach(function (box) {
    var frame = box.querySelector("iframe");
    var fallback = box.querySelector(".pagecall-room__fallback");
    if (!frame || !fallback || box.dataset.pagecallWatched) {
      return;
    }
    box.dataset.pagecallWatched = "1";
    var loaded = false;
    function handleIframeError() {
      if (!loaded) {
        fallback.hidden = false;
        box.dataset.pagecallFailed = "1";
      }
    }
    frame.addEventListener("load", function () { loaded = true; });
    frame.addEventListener("error", handleIframeError);
    window.setTimeout(handleIframeError, LOAD_TIMEOUT_MS);
  });
})();
