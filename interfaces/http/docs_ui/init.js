/* Starts Redoc on the API docs page; a file of its own so that the page's CSP allows no inline script. */
"use strict";
(function () {
  var container = document.getElementById("redoc");
  Redoc.init(container.getAttribute("data-spec-url"), { hideDownloadButton: false }, container);
})();
