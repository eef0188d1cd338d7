/*
 * A local stand-in for Shopify's App Bridge (https://cdn.shopify.com/shopifycloud/app-bridge.js),
 * served by the Shopify simulator because tests and the demo cannot reach Shopify's CDN.
 * Use it in development and tests only. It implements what an embedded page relies on:
 *  - window.shopify.config: {apiKey (from <meta name="shopify-api-key">), shop, host, locale};
 *  - window.shopify.idToken(): a fresh session token, asked of the simulated admin frame
 *    around the app (postMessage), or, when the page is opened without that frame, of the
 *    simulator directly;
 *  - window.shopify.app.extensions(): the app's extensions and where they are active (the
 *    theme app extension's embeds), as the simulated shop has them;
 *  - fetch() to the app's own origin carries "Authorization: Bearer <session token>", and is
 *    retried once with a new token when the answer has X-Shopify-Retry-Invalid-Session-Request,
 *    as App Bridge does.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var source = new URL(script.src);
  var base = source.origin + source.pathname.replace(/\/app-bridge\.js$/, "");
  var params = new URLSearchParams(window.location.search);
  var meta = document.querySelector('meta[name="shopify-api-key"]');
  var config = {
    apiKey: meta ? meta.content : null,
    shop: params.get("shop"),
    host: params.get("host"),
    locale: params.get("locale") || "en",
  };
  var originalFetch = window.fetch.bind(window);
  var pending = {};
  var counter = 0;

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (data && data.type === "shopify-simulator:id-token" && pending[data.id]) {
      pending[data.id](data.token);
      delete pending[data.id];
    }
  });

  function fromAdminFrame() {
    return new Promise(function (resolve, reject) {
      var id = "t" + ++counter;
      pending[id] = resolve;
      window.parent.postMessage({ type: "shopify-simulator:id-token-request", id: id }, "*");
      setTimeout(function () {
        if (pending[id]) {
          delete pending[id];
          reject(new Error("the admin frame gave no session token"));
        }
      }, 5000);
    });
  }

  function fromSimulator() {
    var url = base + "/_control/shops/" + encodeURIComponent(config.shop) + "/session-token";
    return originalFetch(url, { method: "POST" }).then(function (response) {
      if (!response.ok) throw new Error("the simulator gave no session token");
      return response.json().then(function (body) { return body.token; });
    });
  }

  function extensions() {
    var url = base + "/_control/shops/" + encodeURIComponent(config.shop) + "/app-extensions";
    return originalFetch(url).then(function (response) {
      if (!response.ok) throw new Error("the simulator gave no extensions");
      return response.json();
    });
  }

  function idToken() {
    return window.parent !== window ? fromAdminFrame() : fromSimulator();
  }

  function sameOrigin(input) {
    var url = new URL(input instanceof Request ? input.url : String(input), window.location.href);
    return url.origin === window.location.origin;
  }

  function withToken(input, init) {
    return idToken().then(function (token) {
      var options = Object.assign({}, init || {});
      var headers = new Headers(options.headers || (input instanceof Request ? input.headers : {}));
      headers.set("Authorization", "Bearer " + token);
      options.headers = headers;
      return originalFetch(input, options);
    });
  }

  window.fetch = function (input, init) {
    if (!sameOrigin(input)) return originalFetch(input, init);
    return withToken(input, init).then(function (response) {
      if (response.headers.get("X-Shopify-Retry-Invalid-Session-Request") === "1") {
        return withToken(input, init);
      }
      return response;
    });
  };

  window.shopify = {
    config: config,
    idToken: idToken,
    app: { extensions: extensions },
    simulated: true,
  };
})();
