// The API reference page (/api/docs): Swagger UI, vendored, reading the OpenAPI document
// named by #swagger-ui's data-spec-url. A reference only: "Try it out" is off, since calls
// from this page would carry the browser's session, not a developer's API key.
(function () {
  "use strict";

  function start() {
    var root = document.getElementById("swagger-ui");
    if (!root || root.getAttribute("data-started") || typeof window.SwaggerUIBundle !== "function") {
      return;
    }
    root.setAttribute("data-started", "true");
    window.SwaggerUIBundle({
      url: root.getAttribute("data-spec-url"),
      domNode: root,
      supportedSubmitMethods: [],
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      // Deep links put a link inside each operation's toggle button: a control within
      // a control, which keyboards and screen readers cannot use.
      deepLinking: false,
      validatorUrl: null,
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
