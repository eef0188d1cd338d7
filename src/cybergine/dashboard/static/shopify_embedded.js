/*
 * The embedded admin page inside Shopify's admin. No cookie: every request to the
 * platform carries a session token from App Bridge (shopify.idToken()), and a 401 asking
 * for a fresh one (X-Shopify-Retry-Invalid-Session-Request) is retried once.
 * Pages that cannot be framed (Shopify's charge confirmation, the full dashboard) open
 * top-level.
 */
(function () {
  "use strict";
  var RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request";
  var main = document.getElementById("content");
  var message = document.getElementById("message");

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  function call(path, body, retried) {
    return window.shopify.idToken().then(function (token) {
      var options = {
        method: body === undefined ? "GET" : "POST",
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      };
      if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
      return fetch(path, options).then(function (response) {
        if (response.status === 401 && response.headers.get(RETRY_HEADER) === "1" && !retried) {
          return call(path, body, true);
        }
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.detail || data.title || "Request failed");
          return data;
        });
      });
    });
  }

  function setField(name, text) {
    var node = main.querySelector('[data-field="' + name + '"]');
    if (node) node.textContent = text;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "does not expire";
  }

  var EMBED_LABELS = {
    active: "The chat is on in your published theme.",
    inactive: "The chat is not switched on in your published theme yet.",
    unknown: "Whether the chat is on in your theme could not be checked.",
  };

  function show(status) {
    setField("connection.status", status.connection.status);
    setField("connection.token_valid_until", when(status.connection.token_valid_until));
    setField("connection.scopes", status.connection.scopes.join(", ") || "none");
    setField("sync.label", status.sync.label);
    setField("embed.label", EMBED_LABELS[status.embed.state] || EMBED_LABELS.unknown);
    var link = document.getElementById("embed-link");
    if (status.embed.editor_url && status.embed.state !== "active") {
      link.href = status.embed.editor_url;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
    var billing = status.billing;
    setField("billing.plan", billing.plan + " plan" + (billing.subscription_status ? " (" + billing.subscription_status.toLowerCase() + ")" : ""));
    setField("billing.usage", billing.conversations_this_month + " of " + billing.conversations_per_month + " conversations this month");
    var limit = document.getElementById("limit-message");
    if (billing.limit_reached) {
      limit.textContent = "This month's " + billing.conversations_per_month + " conversations are used: new conversations go to your team in the inbox instead of the assistant. Choose a larger plan to let the assistant answer them.";
      limit.hidden = false;
    } else {
      limit.hidden = true;
    }
    var plans = document.getElementById("plans");
    plans.textContent = "";
    billing.plans.forEach(function (plan) {
      var item = document.createElement("li");
      var price = Number(plan.price) === 0 ? "free" : plan.price + " " + plan.currency + " every 30 days";
      item.textContent = plan.name + ": " + plan.conversations_per_month + " conversations a month, " + price + " ";
      if (Number(plan.price) > 0 && !(plan.name === billing.plan && billing.subscription_status === "ACTIVE")) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = "Subscribe to " + plan.name;
        button.addEventListener("click", function () { subscribe(plan.name); });
        item.appendChild(button);
      }
      plans.appendChild(item);
    });
  }

  function embedStateFromAppBridge() {
    var app = window.shopify && window.shopify.app;
    if (!app || typeof app.extensions !== "function") return Promise.resolve("unknown");
    return app.extensions().then(function (extensions) {
      var block = main.dataset.block;
      var found = "unknown";
      (extensions || []).forEach(function (extension) {
        if (extension.type !== "theme_app_extension") return;
        (extension.activations || []).forEach(function (activation) {
          if (activation.handle !== block) return;
          if (activation.status === "active") found = "active";
          else if (found !== "active") found = "inactive";
        });
      });
      return found;
    }, function () { return "unknown"; });
  }

  function subscribe(plan) {
    say("Opening Shopify's confirmation page…");
    call("/shopify/api/subscribe", { plan: plan }).then(function (answer) {
      window.open(answer.confirmation_url, "_top");
    }).catch(function (error) { say(error.message, true); });
  }

  document.getElementById("open-dashboard").addEventListener("click", function () {
    say("Opening the full dashboard…");
    call("/shopify/api/dashboard-link", {}).then(function (answer) {
      window.open(answer.url, "_top");
    }).catch(function (error) { say(error.message, true); });
  });

  call("/shopify/api/status").then(function (status) {
    main.dataset.block = status.embed.block;
    show(status);
    say("Connected.");
    return embedStateFromAppBridge().then(function (state) {
      if (state === "unknown" && status.embed.state !== "unknown") return null;
      return call("/shopify/api/embed-state", { state: state }).then(function () {
        return call("/shopify/api/status").then(show);
      });
    });
  }).catch(function (error) { say(error.message, true); });
})();
