/*
 * Cybergine web chat widget: the chat bubble a shop embeds on its own site with
 *
 *   <script src="{HOST}/widget.js" data-assistant="wk_PUBLIC_KEY" async></script>
 *
 * ({HOST} being the Cybergine server's origin; optional data-lang="fr" and
 * data-position="left" override the assistant's settings.)
 *
 * The dashboard's preview loads it on the server's own pages with data-preview='{...}':
 * the appearance being edited (title, colour, position, avatar_url, language,
 * ask_consent) replaces the saved one, the panel opens, and nothing is stored in the
 * browser. Honoured only on the server's own origin: a shop's page cannot use it.
 *
 * It runs on pages we do not control, so it is written to be a polite guest:
 *  - it never throws into the page (every entry point is guarded) and defines one
 *    global, the frozen `window.CybergineWidget` (open / close / toggle);
 *  - it lives in a shadow root on a single host element: the page's CSS cannot reach
 *    in and ours cannot leak out;
 *  - it talks only to the origin it was loaded from;
 *  - everything that comes from the page or the server is shown as text, never parsed
 *    as markup (no markup-parsing DOM APIs are used anywhere in this file).
 *
 * Layout of this file, top to bottom: constants and UI strings; small helpers; storage;
 * the HTTP client; start-up (session); the DOM (built once the config is known); the
 * message list; sending; handoff; real time (WebSocket, then long-polling); the public
 * API. Plain ES2017, no build step.
 */
(function () {
  "use strict";

  // A second copy (two tags, or a single-page app that injects it again) stays idle:
  // the first one owns the page.
  if (window.CybergineWidget && typeof window.CybergineWidget.toggle === "function") return;

  // -------------------------------------------------------------------------------
  // Constants

  var API = "/widget/v1";
  var MAX_CHARS = 2000; // the server's limit, in characters (code points)
  var COUNTER_FROM = 1800; // the counter appears when the limit gets close
  var PING_MS = 25000;
  var STALE_MS = 65000; // nothing heard for this long: the socket is dead even if it looks open
  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var SOCKET_PROBE_MS = 180000; // while long-polling, try the WebSocket again this often
  var POLL_TIMEOUT_MS = 40000; // the server holds a poll 25 s; give up on it after this
  var TYPING_TIMEOUT_MS = 30000; // a lost "typing off" must not leave the dots forever
  var HANDOFF_BUTTON = "cybergine:handoff";
  var DEFAULT_COLOUR = "#0b5fff";
  var SENDERS = ["customer", "assistant", "agent", "system"];
  var MAX_PRODUCTS = 10; // as many as a WhatsApp list shows

  var STRINGS = {
    en: {
      open: "Open chat",
      unread: "Open chat, {n} unread",
      close: "Close chat",
      ai: "AI assistant",
      disclosure: "You're chatting with an AI assistant.",
      agent: "Support team",
      send: "Send",
      handoff: "Talk to a person",
      typing: "typing",
      input: "Message",
      placeholder: "Write a message\u2026",
      sources: "Sources",
      tooFast: "You're sending messages too quickly. Trying again in a moment\u2026",
      tooLong: "Your message is too long: 2,000 characters at most.",
      empty: "Write a message first.",
      network: "Connection problem. Please try again.",
      failed: "Something went wrong. Please try again.",
      consent: "Remember this chat on this device?",
      yes: "Yes",
      no: "No",
      privacy: "Privacy notice",
      joined: "A person has joined the chat",
      waiting: "A person will join the chat shortly.",
      ended: "This conversation has ended.",
      products: "Products",
      inStock: "In stock",
      outOfStock: "Out of stock",
      was: "Was",
      rating: "Your rating",
      stars: "{n} of 5 stars",
      rate: "Send rating",
      thanks: "Thank you for your rating.",
    },
    fr: {
      open: "Ouvrir la discussion",
      unread: "Ouvrir la discussion, {n} non lus",
      close: "Fermer la discussion",
      ai: "Assistant IA",
      disclosure: "Vous discutez avec un assistant IA.",
      agent: "\u00c9quipe d'assistance",
      send: "Envoyer",
      handoff: "Parler \u00e0 une personne",
      typing: "en train d'\u00e9crire",
      input: "Message",
      placeholder: "\u00c9crivez un message\u2026",
      sources: "Sources",
      tooFast:
        "Vous envoyez des messages trop rapidement. Nouvel essai dans un instant\u2026",
      tooLong: "Votre message est trop long\u00a0: 2\u00a0000 caract\u00e8res au maximum.",
      empty: "\u00c9crivez d'abord votre message.",
      network: "Probl\u00e8me de connexion. Veuillez r\u00e9essayer.",
      failed: "Une erreur est survenue. Veuillez r\u00e9essayer.",
      consent: "Se souvenir de cette discussion sur cet appareil\u00a0?",
      yes: "Oui",
      no: "Non",
      privacy: "Politique de confidentialit\u00e9",
      joined: "Une personne a rejoint la discussion",
      waiting: "Une personne va bient\u00f4t rejoindre la discussion.",
      ended: "Cette discussion est termin\u00e9e.",
      products: "Produits",
      inStock: "En stock",
      outOfStock: "Rupture de stock",
      was: "Au lieu de",
      rating: "Votre note",
      stars: "{n} \u00e9toiles sur 5",
      rate: "Envoyer la note",
      thanks: "Merci pour votre note.",
    },
    de: {
      open: "Chat \u00f6ffnen",
      unread: "Chat \u00f6ffnen, {n} ungelesen",
      close: "Chat schlie\u00dfen",
      ai: "KI-Assistent",
      disclosure: "Sie chatten mit einem KI-Assistenten.",
      agent: "Support-Team",
      send: "Senden",
      handoff: "Mit einem Menschen sprechen",
      typing: "schreibt",
      input: "Nachricht",
      placeholder: "Nachricht schreiben\u2026",
      sources: "Quellen",
      tooFast: "Sie senden Nachrichten zu schnell. Gleich erneuter Versuch\u2026",
      tooLong: "Ihre Nachricht ist zu lang: h\u00f6chstens 2.000 Zeichen.",
      empty: "Schreiben Sie zuerst eine Nachricht.",
      network: "Verbindungsproblem. Bitte versuchen Sie es erneut.",
      failed: "Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.",
      consent: "Diesen Chat auf diesem Ger\u00e4t speichern?",
      yes: "Ja",
      no: "Nein",
      privacy: "Datenschutzhinweis",
      joined: "Eine Person ist dem Chat beigetreten",
      waiting: "Gleich meldet sich eine Person im Chat.",
      ended: "Dieses Gespr\u00e4ch ist beendet.",
      products: "Produkte",
      inStock: "Auf Lager",
      outOfStock: "Nicht auf Lager",
      was: "Statt",
      rating: "Ihre Bewertung",
      stars: "{n} von 5 Sternen",
      rate: "Bewertung senden",
      thanks: "Danke f\u00fcr Ihre Bewertung.",
    },
    es: {
      open: "Abrir chat",
      unread: "Abrir chat, {n} sin leer",
      close: "Cerrar chat",
      ai: "Asistente de IA",
      disclosure: "Est\u00e1s chateando con un asistente de IA.",
      agent: "Equipo de soporte",
      send: "Enviar",
      handoff: "Hablar con una persona",
      typing: "escribiendo",
      input: "Mensaje",
      placeholder: "Escribe un mensaje\u2026",
      sources: "Fuentes",
      tooFast:
        "Est\u00e1s enviando mensajes demasiado r\u00e1pido. Lo intentaremos de nuevo en un momento\u2026",
      tooLong: "Tu mensaje es demasiado largo: 2000 caracteres como m\u00e1ximo.",
      empty: "Escribe primero tu mensaje.",
      network: "Problema de conexi\u00f3n. Int\u00e9ntalo de nuevo.",
      failed: "Algo sali\u00f3 mal. Int\u00e9ntalo de nuevo.",
      consent: "\u00bfRecordar este chat en este dispositivo?",
      yes: "S\u00ed",
      no: "No",
      privacy: "Aviso de privacidad",
      joined: "Una persona se ha unido al chat",
      waiting: "Una persona se unir\u00e1 al chat en breve.",
      ended: "Esta conversaci\u00f3n ha terminado.",
      products: "Productos",
      inStock: "En stock",
      outOfStock: "Agotado",
      was: "Antes",
      rating: "Tu valoraci\u00f3n",
      stars: "{n} de 5 estrellas",
      rate: "Enviar valoraci\u00f3n",
      thanks: "Gracias por tu valoraci\u00f3n.",
    },
  };

  // -------------------------------------------------------------------------------
  // Helpers

  function report(error) {
    // Visible to the shop's developer in the console; never rethrown into the page,
    // whose own error tracking would otherwise collect our problems.
    try {
      if (window.console && console.warn) console.warn("Cybergine widget:", error);
    } catch (ignored) {
      /* nothing left to do */
    }
  }

  // Wraps every callback the browser calls (events, timers, promises).
  function guard(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (error) {
        report(error);
      }
    };
  }

  function str(value) {
    return typeof value === "string" ? value : value == null ? "" : String(value);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        if (attrs[name] != null) node.setAttribute(name, String(attrs[name]));
      });
    }
    if (text != null) node.textContent = text;
    return node;
  }

  function on(target, type, fn, options) {
    target.addEventListener(type, guard(fn), options || false);
  }

  // The server counts characters as code points, not UTF-16 units.
  function charCount(text) {
    return Array.from(text).length;
  }

  // Only absolute web links: no javascript:, data:, relative or protocol-relative URLs.
  function webUrl(value) {
    if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
    try {
      var url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  // Message ids sort in time order. They are UUID-like strings; integer ids (should
  // the server ever use them) must not sort as text ("10" < "9").
  function compareIds(a, b) {
    if (a.length !== b.length && /^\d+$/.test(a) && /^\d+$/.test(b)) {
      return a.length - b.length;
    }
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function uuid4() {
    var bytes = new Uint8Array(16);
    var cryptoApi = window.crypto;
    if (cryptoApi && cryptoApi.getRandomValues) {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join("-");
  }

  // WCAG relative luminance of "#rrggbb".
  function luminance(hex) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  function contrast(a, b) {
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }

  // The shop picks any colour; text on it must still reach AA (4.5:1). White or a
  // near-black always does for one of them, except around mid-grey where only pure
  // black still passes.
  function palette(colour) {
    var hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(str(colour)) ? colour : DEFAULT_COLOUR;
    if (hex.length === 4) hex = "#" + hex[1] + hex[1] + hex[2] + hex[2] + hex[3] + hex[3];
    var l = luminance(hex);
    var onWhite = contrast(l, 1);
    var onDark = contrast(l, luminance("#111111"));
    var text = onDark > onWhite && onDark >= 4.5 ? "#111111" : onWhite >= 4.5 ? "#ffffff" : "#000000";
    // Focus rings and outlines sit on the white panel: they need 3:1 against it.
    var ring = onWhite >= 3 ? hex : "#1a1a1a";
    return { accent: hex, onAccent: text, ring: ring };
  }

  function language(code) {
    var short = str(code).toLowerCase().split(/[-_]/)[0];
    return Object.prototype.hasOwnProperty.call(STRINGS, short) ? short : null;
  }

  function retryAfterSeconds(response) {
    var seconds = NaN;
    var header = response.headers && response.headers.get("Retry-After");
    if (header) {
      seconds = /^\d+$/.test(header.trim())
        ? Number(header)
        : (Date.parse(header) - Date.now()) / 1000;
    }
    if (!(seconds >= 0) && response.data && typeof response.data.retry_after === "number") {
      seconds = response.data.retry_after;
    }
    if (!(seconds >= 0)) seconds = 5;
    return Math.min(120, Math.max(1, Math.ceil(seconds)));
  }

  // application/problem+json `detail`, made readable (FastAPI validation errors are a
  // list of objects).
  function problemDetail(data) {
    if (!data || typeof data !== "object") return "";
    var detail = data.detail;
    if (Array.isArray(detail)) {
      detail = detail
        .map(function (item) {
          return item && typeof item === "object" ? str(item.msg) : str(item);
        })
        .filter(Boolean)
        .join(" ");
    }
    detail = str(detail) || str(data.title);
    return detail.length > 300 ? detail.slice(0, 299) + "\u2026" : detail;
  }

  // -------------------------------------------------------------------------------
  // Where we come from: our own <script> element

  // currentScript exists only while this file is first executed; async scripts
  // included. The selector is the fallback for loaders that inject it differently.
  var script = null;
  try {
    script =
      document.currentScript ||
      document.querySelector('script[data-assistant][src*="widget.js"]');
  } catch (error) {
    report(error);
  }

  var HOST = null;
  var KEY = null;
  var LANG_OVERRIDE = null;
  var POSITION_OVERRIDE = null;
  var PREVIEW = null; // the dashboard's preview: appearance not saved yet
  var PREVIEW_KEYS = [
    "title",
    "colour",
    "position",
    "avatar_url",
    "language",
    "ask_consent",
    "privacy_notice_url",
  ];
  try {
    if (script && script.src) {
      HOST = new URL(script.src, location.href).origin;
      KEY = str(script.getAttribute("data-assistant")).trim();
      LANG_OVERRIDE = language(script.getAttribute("data-lang"));
      var position = str(script.getAttribute("data-position")).toLowerCase();
      POSITION_OVERRIDE = position === "left" || position === "right" ? position : null;
      var preview = script.getAttribute("data-preview");
      if (preview && HOST === location.origin) {
        var parsed = JSON.parse(preview);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) PREVIEW = parsed;
      }
    }
  } catch (error) {
    report(error);
  }
  if (!HOST || HOST === "null" || !/^https?:/.test(HOST)) HOST = null;

  // -------------------------------------------------------------------------------
  // Storage: localStorage can be missing or throw (private modes, blocked cookies,
  // sandboxed frames); the widget then works for the page's lifetime only.

  function storageOf(name) {
    try {
      var storage = window[name];
      storage.setItem("cybergine.probe", "1");
      storage.removeItem("cybergine.probe");
      return storage;
    } catch (error) {
      return null;
    }
  }

  // A preview keeps nothing: each reload shows the widget as a first-time visitor sees it.
  var local = PREVIEW ? null : storageOf("localStorage");
  var perTab = PREVIEW ? null : storageOf("sessionStorage");
  var PREFIX = "cybergine." + KEY + ".";

  function load(storage, name) {
    try {
      return storage ? storage.getItem(PREFIX + name) : null;
    } catch (error) {
      return null;
    }
  }

  function save(storage, name, value) {
    try {
      if (!storage) return;
      if (value == null) storage.removeItem(PREFIX + name);
      else storage.setItem(PREFIX + name, value);
    } catch (error) {
      /* full or blocked: the in-memory copy still works */
    }
  }

  // -------------------------------------------------------------------------------
  // State

  var state = {
    token: null,
    config: null,
    conversation: null, // "bot" | "waiting_for_human" | "human" | "closed" | null
    cursor: null, // id of the last message the stream (or session) delivered
    lastId: null, // greatest message id on screen, whatever path it came by
    // "yes" is kept on the device; a "no" only for this tab, since keeping it on the device
    // would itself be remembering something without consent.
    consent: load(local, "consent") === "yes" ? "yes" : load(perTab, "consent") === "no" ? "no" : null,
    consentPending: false,
    persist: false,
    open: false,
    unread: 0,
  };

  // A refusal an earlier version kept on the device goes, with the token kept before it.
  if (load(local, "consent") === "no") {
    save(local, "consent", null);
    save(local, "token", null);
  }

  var ui = null; // the DOM, once built
  var t = STRINGS.en;
  var lang = "en";
  var wantOpen = null; // open()/close() called before the widget was ready

  // -------------------------------------------------------------------------------
  // HTTP: JSON to and from our own origin only, no cookies.

  function request(method, path, body, auth, signal) {
    var headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (auth && state.token) headers.Authorization = "Bearer " + state.token;
    var init = {
      method: method,
      headers: headers,
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
    };
    if (body) init.body = JSON.stringify(body);
    if (signal) init.signal = signal;
    return fetch(HOST + API + path, init).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var parsed =
        type.indexOf("json") >= 0
          ? response.json().catch(function () {
              return null;
            })
          : Promise.resolve(null);
      return parsed.then(function (data) {
        return { status: response.status, data: data, headers: response.headers };
      });
    });
  }

  function ok(response) {
    return response.status >= 200 && response.status < 300;
  }

  // -------------------------------------------------------------------------------
  // Start-up: one session request; the bubble appears only if the server says yes.

  function postSession(token) {
    return request("POST", "/session", {
      widget_key: KEY,
      visitor_token: token || null,
      page_url: str(location.href),
    });
  }

  function start(attempt) {
    var stored = state.consent === "no" ? null : load(local, "token");
    postSession(stored)
      .then(
        function (response) {
          var data = response.data;
          if (response.status === 200 && data && data.visitor_token && data.config) {
            build(data);
          } else if (response.status >= 400 && response.status < 500 && response.status !== 429) {
            // 403: this site is not among the assistant's allowed origins (or the key is
            // wrong). Show nothing at all; tell the developer why.
            report("disabled on this page (" + response.status + "): " + problemDetail(data));
          } else {
            retryStart(attempt);
          }
        },
        function () {
          retryStart(attempt);
        }
      )
      .catch(report);
  }

  function retryStart(attempt) {
    if (attempt < 3) setTimeout(guard(start), 5000 * Math.pow(3, attempt), attempt + 1);
  }

  // Adopts a session answer: at start-up, and again whenever the token was refused.
  function applySession(data, initial) {
    var previous = state.token;
    state.token = str(data.visitor_token);
    if (state.persist) save(local, "token", state.token);
    (Array.isArray(data.messages) ? data.messages : []).forEach(function (message) {
      if (message && message.id != null) advance(str(message.id));
      addMessage(message, initial);
    });
    if (data.cursor) advance(str(data.cursor));
    var conversation = data.conversation;
    setConversationState(conversation && conversation.state ? str(conversation.state) : null, true);
    if (conversation) startRealtime();
    if (!initial && previous !== state.token) restartSocket();
  }

  var refreshing = null;

  // Single flight: a send, a poll and a handoff refused at the same moment share one
  // new session.
  function refreshSession() {
    if (!refreshing) {
      refreshing = postSession(state.token).then(
        function (response) {
          refreshing = null;
          if (response.status !== 200 || !response.data || !response.data.visitor_token) {
            throw new Error("session refused (" + response.status + ")");
          }
          applySession(response.data, false);
        },
        function (error) {
          refreshing = null;
          throw error;
        }
      );
    }
    return refreshing;
  }

  // -------------------------------------------------------------------------------
  // The DOM

  var CSS = [
    ".root{--cg-accent:" + DEFAULT_COLOUR + ";--cg-on-accent:#fff;--cg-ring:" + DEFAULT_COLOUR + ";",
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;",
    "color:#1a1a1a;-webkit-font-smoothing:antialiased;text-align:left}",
    "*,*::before,*::after{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    "button,textarea{font:inherit;color:inherit;margin:0}",
    "button{cursor:pointer}",
    ":focus-visible{outline:3px solid var(--cg-ring);outline-offset:2px}",
    ".sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;",
    "clip:rect(0 0 0 0);white-space:nowrap;border:0}",

    /* launcher */
    ".launcher{position:fixed;bottom:20px;right:20px;width:60px;height:60px;border-radius:50%;",
    "border:0;padding:0;background:var(--cg-accent);color:var(--cg-on-accent);display:flex;",
    "align-items:center;justify-content:center;box-shadow:0 4px 16px rgba(0,0,0,.28);",
    "transition:transform .15s ease}",
    ".left .launcher{right:auto;left:20px}",
    ".launcher:hover{transform:scale(1.06)}",
    /* the page behind the bubble can be any colour: a white and a dark ring together */
    ".launcher:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px;box-shadow:0 0 0 2px #fff}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;",
    "border-radius:11px;border:2px solid #fff;background:#c62828;color:#fff;font-size:12px;",
    "font-weight:700;line-height:18px;text-align:center}",
    ".icon-chat{position:relative;width:26px;height:20px;border-radius:6px;background:currentColor}",
    ".icon-chat::after{content:'';position:absolute;left:5px;bottom:-4px;width:9px;height:9px;",
    "background:currentColor;transform:rotate(45deg)}",
    ".icon-close{position:relative;width:18px;height:18px}",
    ".icon-close::before,.icon-close::after{content:'';position:absolute;left:8px;top:-1px;",
    "width:2px;height:20px;border-radius:1px;background:currentColor;transform:rotate(45deg)}",
    ".icon-close::after{transform:rotate(-45deg)}",
    ".open .launcher .icon-chat,.launcher .icon-close{display:none}",
    ".open .launcher .icon-close{display:block}",

    /* panel */
    ".panel{position:fixed;bottom:92px;right:20px;width:380px;height:620px;",
    "max-width:calc(100vw - 40px);max-height:calc(100vh - 112px);display:flex;",
    "flex-direction:column;background:#fff;border-radius:14px;overflow:hidden;",
    "box-shadow:0 8px 32px rgba(0,0,0,.28)}",
    ".left .panel{right:auto;left:20px}",
    ".header{display:flex;align-items:center;gap:10px;padding:12px 10px 12px 14px;",
    "background:var(--cg-accent);color:var(--cg-on-accent)}",
    ".header :focus-visible{outline-color:var(--cg-on-accent);outline-offset:-3px}",
    ".avatar{flex:none;width:38px;height:38px;border-radius:50%;overflow:hidden;display:flex;",
    "align-items:center;justify-content:center;background:var(--cg-on-accent);",
    "color:var(--cg-accent);font-weight:700;font-size:17px}",
    ".avatar img{width:100%;height:100%;object-fit:cover;display:block}",
    ".heading{flex:1;min-width:0}",
    ".title{font-weight:700;font-size:16px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".subtitle{font-size:13px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}",
    ".close{flex:none;width:40px;height:40px;border:0;border-radius:8px;background:transparent;",
    "color:inherit;display:flex;align-items:center;justify-content:center}",
    ".close:hover{background:rgba(127,127,127,.25)}",
    ".disclosure{margin:0;padding:7px 14px;font-size:12.5px;line-height:1.35;color:#3d3d3d;",
    "background:#f4f5f7;border-bottom:1px solid #e1e3e6}",
    ".disclosure a{color:inherit;text-decoration:underline;white-space:nowrap}",
    ".body{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:14px;display:flex;",
    "flex-direction:column;gap:8px}",
    ".list{display:flex;flex-direction:column;gap:8px}",

    /* messages */
    ".msg{display:flex;flex-direction:column;align-items:flex-start;gap:4px;max-width:86%;",
    "align-self:flex-start}",
    ".msg.customer{align-self:flex-end;align-items:flex-end}",
    ".msg.system,.notice{align-self:center;align-items:center;max-width:100%;text-align:center}",
    ".bubble{padding:9px 13px;border-radius:16px;background:#f0f1f3;color:#1a1a1a;",
    "white-space:pre-wrap;overflow-wrap:anywhere}",
    ".assistant .bubble,.agent .bubble{border-bottom-left-radius:4px}",
    ".customer .bubble{background:var(--cg-accent);color:var(--cg-on-accent);border-bottom-right-radius:4px;border-bottom-left-radius:16px}",
    ".system .bubble,.notice{background:transparent;color:#4a4a4a;font-size:13px;padding:2px 8px}",
    ".who{font-size:12px;color:#4a4a4a;padding:0 4px}",
    ".sources{font-size:13px;color:#3d3d3d;padding:0 4px}",
    ".sources ul{margin:2px 0 0;padding-left:18px}",
    ".sources a{color:#1a1a1a;text-decoration:underline;overflow-wrap:anywhere}",
    ".buttons{display:flex;flex-wrap:wrap;gap:6px}",
    /* survey stars: the radios stay focusable (hidden visually), the label shows the star */
    ".survey{display:flex;flex-wrap:wrap;align-items:center;gap:6px}",
    ".survey fieldset{position:relative;border:0;margin:0;padding:0;display:flex;gap:2px}",
    ".survey legend{font-size:13px;color:#3d3d3d;padding:0 4px}",
    ".survey input{position:absolute;opacity:0;width:1px;height:1px}",
    ".survey label{font-size:26px;line-height:1;padding:2px;color:#5c5c5c;cursor:pointer}",
    ".survey .on,.survey label:has(~ input:checked) .off,.survey input:checked + label .off{display:none}",
    ".survey label:has(~ input:checked) .on,.survey input:checked + label .on{display:inline;color:#8a5a00}",
    ".survey input:focus-visible + label{outline:2px solid var(--cg-ring);border-radius:4px}",
    ".survey-status{flex-basis:100%;margin:0;font-size:13px;color:#3d3d3d}",
    ".reply{min-height:36px;padding:6px 12px;border-radius:18px;border:1.5px solid var(--cg-ring);",
    "background:#fff;color:#1a1a1a;font-size:14px}",
    ".reply:hover:not(:disabled){background:#f0f1f3}",
    ".reply:disabled{cursor:default;border-color:#c4c7cc;color:#5c5c5c}",
    /* product cards: a row that scrolls sideways when it is wider than the panel */
    ".msg.has-products{max-width:100%;align-self:stretch}",
    ".products{width:100%;overflow-x:auto;overscroll-behavior-x:contain;scroll-snap-type:x proximity;",
    "padding:2px 2px 6px}",
    ".products ul{display:flex;gap:8px;margin:0;padding:0;list-style:none}",
    ".product{flex:0 0 152px;scroll-snap-align:start;border:1px solid #c4c7cc;border-radius:12px;",
    "background:#fff;color:#1a1a1a;overflow:hidden}",
    ".product-link{display:flex;flex-direction:column;gap:2px;height:100%;color:inherit;",
    "text-decoration:none;padding:0 0 8px}",
    "a.product-link:hover .product-title{text-decoration:underline}",
    "a.product-link:focus-visible{outline-offset:-3px}",
    ".product-media{display:block;width:100%;height:112px;background:#f0f1f3;object-fit:cover}",
    ".product-media.none{display:flex;align-items:center;justify-content:center;color:#5c5c5c;",
    "font-size:28px}",
    ".product-title{padding:4px 10px 0;font-weight:600;font-size:14px;line-height:1.3;",
    "display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;",
    "overflow-wrap:anywhere}",
    ".product-variant{padding:0 10px;font-size:12.5px;color:#4a4a4a;overflow-wrap:anywhere}",
    ".product-price{padding:0 10px;font-size:14px;font-weight:600}",
    ".product-price s{font-weight:400;color:#4a4a4a;margin-left:6px}",
    ".product-stock{padding:0 10px;font-size:12.5px;font-weight:600}",
    ".product-stock.in{color:#1b5e20}",
    ".product-stock.out{color:#b00020}",
    ".typing{align-self:flex-start;display:flex;gap:4px;padding:13px 14px;border-radius:16px;",
    "border-bottom-left-radius:4px;background:#f0f1f3}",
    ".typing span{width:7px;height:7px;border-radius:50%;background:#5c5c5c;",
    "animation:cg-bounce 1.2s infinite ease-in-out}",
    ".typing span:nth-child(2){animation-delay:.15s}",
    ".typing span:nth-child(3){animation-delay:.3s}",
    "@keyframes cg-bounce{0%,80%,100%{opacity:.35;transform:translateY(0)}",
    "40%{opacity:1;transform:translateY(-3px)}}",

    /* consent */
    ".consent{border:1px solid #e1e3e6;border-radius:12px;padding:12px;background:#fafbfc}",
    ".consent p{margin:0 0 10px}",
    ".row{display:flex;gap:8px}",
    ".btn{min-height:40px;padding:8px 18px;border-radius:8px;border:1.5px solid #5c5c5c;",
    "background:#fff;color:#1a1a1a}",
    ".btn.primary{background:var(--cg-accent);color:var(--cg-on-accent);border-color:var(--cg-ring)}",

    /* footer */
    ".footer{border-top:1px solid #e1e3e6;padding:10px 12px 8px;display:flex;",
    "flex-direction:column;gap:6px;background:#fff}",
    ".error{margin:0;color:#b00020;font-size:13px}",
    ".composer{display:flex;gap:8px;align-items:flex-end}",
    /* 16px: iOS zooms the page into smaller inputs */
    "textarea{flex:1;min-width:0;resize:none;height:44px;min-height:44px;max-height:140px;",
    "padding:10px 12px;font-size:16px;line-height:1.4;border:1.5px solid #858a93;",
    "border-radius:10px;background:#fff;color:#1a1a1a}",
    "textarea::placeholder{color:#6b6f76;opacity:1}",
    "textarea:focus-visible{outline-offset:0}",
    "textarea[aria-invalid=true]{border-color:#b00020}",
    ".send{flex:none;min-height:44px;padding:0 16px;border:0;border-radius:10px;",
    "background:var(--cg-accent);color:var(--cg-on-accent);font-weight:600}",
    ".meta{display:flex;align-items:center;gap:8px;min-height:32px}",
    ".counter{font-size:12px;color:#4a4a4a}",
    ".counter.over{color:#b00020;font-weight:700}",
    ".handoff{margin-left:auto;border:0;background:transparent;color:#1a1a1a;font-size:14px;",
    "text-decoration:underline;padding:6px 4px;min-height:32px}",
    ".handoff:hover{text-decoration-thickness:2px}",

    /* phones: the panel is the whole screen */
    "@media (max-width:479px){.panel{top:0;left:0;right:0;bottom:0;width:100%;height:100%;",
    "max-width:none;max-height:none;border-radius:0}.open .launcher{display:none}}",
    "@media (prefers-reduced-motion:reduce){*,*::before,*::after{animation:none!important;",
    "transition:none!important}}",
    /* high-contrast modes drop backgrounds: keep the drawn icons visible */
    "@media (forced-colors:active){.icon-chat,.icon-chat::after,.icon-close::before,",
    ".icon-close::after{forced-color-adjust:none;background:ButtonText}}",
    "@media print{.root{display:none}}",
  ].join("\n");

  function build(data) {
    var config = data.config || {};
    if (PREVIEW) {
      config = Object.assign({}, config);
      PREVIEW_KEYS.forEach(function (name) {
        config[name] = Object.prototype.hasOwnProperty.call(PREVIEW, name) ? PREVIEW[name] : null;
      });
    }
    state.config = config;
    lang = LANG_OVERRIDE || language(config.language) || "en";
    t = STRINGS[lang];

    var colours = palette(config.colour);
    var position = POSITION_OVERRIDE || (config.position === "left" ? "left" : "right");
    var name = str(config.name).trim();
    var title = str(config.title).trim() || name || "Chat";
    // The shop's own label wins, unless it is just the English default while the
    // widget speaks another language (or the page asked for a language other than
    // the assistant's).
    var serverLabel = str(config.handoff_label).trim();
    var handoffLabel =
      serverLabel &&
      (!LANG_OVERRIDE || LANG_OVERRIDE === language(config.language)) &&
      (lang === "en" || serverLabel !== STRINGS.en.handoff)
        ? serverLabel
        : t.handoff;

    // The host element is the only thing we add to the page. Inline !important beats
    // any rule the page may have for divs.
    var host = document.createElement("div");
    host.setAttribute("data-cybergine-widget", "");
    [
      ["all", "initial"],
      ["position", "fixed"],
      ["z-index", "2147483000"],
      ["bottom", "0"],
      [position, "0"],
      ["width", "0"],
      ["height", "0"],
      ["display", "block"],
    ].forEach(function (pair) {
      host.style.setProperty(pair[0], pair[1], "important");
    });
    var shadow = host.attachShadow({ mode: "open" });
    addStyles(shadow);

    var root = el("div", { class: "root " + position, lang: lang, dir: "ltr" });
    root.style.setProperty("--cg-accent", colours.accent);
    root.style.setProperty("--cg-on-accent", colours.onAccent);
    root.style.setProperty("--cg-ring", colours.ring);

    // Announcements for screen readers; outside the panel so it always exists.
    var live = el("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "true" });

    // Panel
    var panel = el("section", {
      id: "cg-panel",
      class: "panel",
      role: "dialog",
      "aria-label": title,
      "data-testid": "cg-panel",
      hidden: "",
    });

    var header = el("div", { class: "header" });
    var avatar = el("div", { class: "avatar", "aria-hidden": "true" });
    var initial = Array.from(name || title)[0] || "?";
    var avatarUrl = webUrl(config.avatar_url);
    if (avatarUrl) {
      var img = el("img", { alt: "", src: avatarUrl, referrerpolicy: "no-referrer" });
      on(img, "error", function () {
        avatar.textContent = initial.toUpperCase();
      });
      avatar.appendChild(img);
    } else {
      avatar.textContent = initial.toUpperCase();
    }
    var heading = el("div", { class: "heading" });
    heading.appendChild(el("div", { class: "title", "data-testid": "cg-title" }, title));
    heading.appendChild(
      el("div", { class: "subtitle" }, (name && name !== title ? name + " \u00b7 " : "") + t.ai)
    );
    var closeButton = el("button", {
      type: "button",
      class: "close",
      "aria-label": t.close,
      "data-testid": "cg-close",
    });
    closeButton.appendChild(el("span", { class: "icon-close", "aria-hidden": "true" }));
    header.appendChild(avatar);
    header.appendChild(heading);
    header.appendChild(closeButton);

    // The AI disclosure sits outside the scrolling list, so it is always in view.
    var disclosure = el(
      "p",
      { class: "disclosure", "data-testid": "cg-disclosure" },
      str(config.ai_disclosure).trim() || t.disclosure
    );
    // The shop's privacy notice, beside the disclosure: in view before anything is typed.
    var noticeUrl = webUrl(config.privacy_notice_url);
    if (noticeUrl) {
      disclosure.appendChild(document.createTextNode(" "));
      disclosure.appendChild(
        el(
          "a",
          {
            href: noticeUrl,
            target: "_blank",
            rel: "noopener noreferrer",
            referrerpolicy: "no-referrer",
            "data-testid": "cg-privacy-notice",
          },
          t.privacy
        )
      );
    }

    var body = el("div", { class: "body" });
    var consent = el("div", { class: "consent", "data-testid": "cg-consent", hidden: "" });
    consent.appendChild(el("p", { id: "cg-consent-question" }, t.consent));
    var consentRow = el("div", { class: "row", role: "group", "aria-labelledby": "cg-consent-question" });
    var consentYes = el(
      "button",
      { type: "button", class: "btn primary", "data-testid": "cg-consent-yes" },
      t.yes
    );
    var consentNo = el("button", { type: "button", class: "btn", "data-testid": "cg-consent-no" }, t.no);
    consentRow.appendChild(consentYes);
    consentRow.appendChild(consentNo);
    consent.appendChild(consentRow);
    var list = el("div", { class: "list", "data-testid": "cg-messages" });
    var typing = el("div", {
      class: "typing",
      role: "img",
      "aria-label": t.typing,
      "data-testid": "cg-typing",
      hidden: "",
    });
    for (var i = 0; i < 3; i++) typing.appendChild(el("span"));
    body.appendChild(consent);
    body.appendChild(list);
    body.appendChild(typing);

    var footer = el("div", { class: "footer" });
    var error = el("p", { class: "error", role: "alert", "data-testid": "cg-error", hidden: "" });
    var composer = el("div", { class: "composer" });
    var input = el("textarea", {
      rows: "1",
      "aria-label": t.input,
      placeholder: t.placeholder,
      "aria-describedby": "cg-counter",
      autocomplete: "off",
      "data-testid": "cg-input",
    });
    var sendButton = el("button", { type: "button", class: "send", "data-testid": "cg-send" }, t.send);
    composer.appendChild(input);
    composer.appendChild(sendButton);
    var meta = el("div", { class: "meta" });
    var counter = el("span", { id: "cg-counter", class: "counter", "data-testid": "cg-counter" });
    var handoffButton = el(
      "button",
      { type: "button", class: "handoff", "data-testid": "cg-handoff" },
      handoffLabel
    );
    meta.appendChild(counter);
    meta.appendChild(handoffButton);
    footer.appendChild(error);
    footer.appendChild(composer);
    footer.appendChild(meta);

    panel.appendChild(header);
    panel.appendChild(disclosure);
    panel.appendChild(body);
    panel.appendChild(footer);

    // Launcher
    var launcher = el("button", {
      type: "button",
      class: "launcher",
      "aria-expanded": "false",
      "aria-controls": "cg-panel",
      "aria-label": t.open,
      "data-testid": "cg-launcher",
    });
    launcher.appendChild(el("span", { class: "icon-chat", "aria-hidden": "true" }));
    launcher.appendChild(el("span", { class: "icon-close", "aria-hidden": "true" }));
    var badge = el("span", { class: "badge", "aria-hidden": "true", "data-testid": "cg-badge", hidden: "" });
    launcher.appendChild(badge);

    root.appendChild(live);
    root.appendChild(panel);
    root.appendChild(launcher);
    shadow.appendChild(root);

    ui = {
      host: host,
      root: root,
      live: live,
      panel: panel,
      body: body,
      list: list,
      typing: typing,
      consent: consent,
      consentYes: consentYes,
      error: error,
      composer: composer,
      input: input,
      counter: counter,
      handoff: handoffButton,
      launcher: launcher,
      badge: badge,
      name: name || title,
    };

    // Behaviour
    on(launcher, "click", function () {
      toggle(true);
    });
    on(closeButton, "click", function () {
      close(true);
    });
    // Escape closes, from the panel or from the launcher.
    on(root, "keydown", function (event) {
      if ((event.key === "Escape" || event.key === "Esc") && state.open && !event.isComposing) {
        event.preventDefault();
        close(true);
      }
    });
    // Key events leave the shadow root retargeted to the host element, so a page's
    // keyboard shortcuts ("/" to search...) would see them as typed outside any field
    // and might swallow them. They are ours.
    ["keydown", "keyup", "keypress"].forEach(function (type) {
      on(root, type, function (event) {
        event.stopPropagation();
      });
    });
    on(input, "keydown", function (event) {
      // Enter sends, Shift+Enter is a new line; never while an IME is composing.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submit();
      }
    });
    on(input, "input", function () {
      autosize();
      updateCounter();
      if (ui.error.textContent === t.empty) showError("");
    });
    on(sendButton, "click", submit);
    on(handoffButton, "click", handoff);
    on(consentYes, "click", function () {
      chooseConsent("yes");
    });
    on(consentNo, "click", function () {
      chooseConsent("no");
    });

    // Nothing is kept on the device before the visitor agrees (when the shop asks) or
    // sends a first message (when it does not): until then the token lives in memory.
    if (state.consent === "no" || !local) {
      state.persist = false;
    } else if (state.consent === "yes") {
      state.persist = true;
    } else if (!config.ask_consent) {
      state.persist = load(local, "token") !== null; // a message was sent before
    } else {
      state.consentPending = true;
      consent.hidden = false;
      composer.hidden = true;
    }

    applySession(data, true);
    if (!items.length && str(config.greeting).trim()) {
      var greeting = renderBubble("assistant", str(config.greeting).trim());
      greeting.setAttribute("data-testid", "cg-greeting");
      greeting.className += " greeting";
      place({ id: "", rank: 0, node: greeting });
    }

    document.body.appendChild(host);
    keepAttached(host);

    // Opened by no one (restored after a navigation, or the dashboard's preview, whose
    // frame reloads while the merchant types beside it): open without taking the focus.
    if (wantOpen !== null) {
      if (wantOpen) open(true);
    } else if (PREVIEW || load(perTab, "open") === "1") {
      open(false);
    }
  }

  // Constructable stylesheets are not subject to the page's CSP style-src, a <style>
  // element is: use them where the browser has them.
  function addStyles(shadow) {
    try {
      if (window.CSSStyleSheet && "adoptedStyleSheets" in shadow) {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        shadow.adoptedStyleSheets = [sheet];
        return;
      }
    } catch (error) {
      /* fall back to a style element */
    }
    shadow.appendChild(el("style", null, CSS));
  }

  // Some sites swap the whole <body> on navigation (Turbo, pjax): follow it.
  function keepAttached(host) {
    if (!window.MutationObserver) return;
    var observer = new MutationObserver(
      guard(function () {
        if (!host.isConnected && document.body) {
          document.body.appendChild(host);
          watch();
        }
      })
    );
    function watch() {
      observer.disconnect();
      observer.observe(document.documentElement, { childList: true });
      if (document.body) observer.observe(document.body, { childList: true });
    }
    watch();
  }

  // -------------------------------------------------------------------------------
  // Open, close, unread

  function open(focus) {
    if (!ui) {
      wantOpen = true;
      return;
    }
    if (!state.open) {
      state.open = true;
      ui.panel.hidden = false;
      ui.root.classList.add("open");
      state.unread = 0;
      updateLauncher();
      save(perTab, "open", "1");
      scrollToEnd(true);
    }
    if (focus) (state.consentPending ? ui.consentYes : ui.input).focus();
  }

  function close(focus) {
    if (!ui) {
      wantOpen = false;
      return;
    }
    if (state.open) {
      state.open = false;
      ui.panel.hidden = true;
      ui.root.classList.remove("open");
      updateLauncher();
      save(perTab, "open", "0");
    }
    if (focus) ui.launcher.focus();
  }

  function toggle(focus) {
    if (!ui) {
      wantOpen = !wantOpen;
      return;
    }
    if (state.open) close(focus);
    else open(focus);
  }

  function updateLauncher() {
    var count = state.unread;
    ui.launcher.setAttribute("aria-expanded", state.open ? "true" : "false");
    ui.launcher.setAttribute(
      "aria-label",
      state.open ? t.close : count ? t.unread.replace("{n}", String(count)) : t.open
    );
    ui.badge.hidden = !count || state.open;
    ui.badge.textContent = count > 99 ? "99+" : String(count);
  }

  function announce(text) {
    // Emptied first so the same text twice is still announced.
    ui.live.textContent = "";
    setTimeout(
      guard(function () {
        ui.live.textContent = text.length > 400 ? text.slice(0, 399) + "\u2026" : text;
      }),
      60
    );
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function chooseConsent(choice) {
    state.consent = choice;
    state.persist = choice === "yes" && !!local;
    save(local, "consent", state.persist ? "yes" : null);
    save(local, "token", state.persist ? state.token : null);
    save(perTab, "consent", choice === "no" ? "no" : null);
    state.consentPending = false;
    ui.consent.hidden = true;
    ui.composer.hidden = false;
    ui.input.focus();
  }

  // -------------------------------------------------------------------------------
  // The message list. Every entry has a sort key: (message id, rank). The greeting
  // sorts first, a notice right after the message that was last when it appeared,
  // messages still being sent last of all.

  var items = []; // [{id: string|null, rank: number, node}], sorted
  var seen = new Map(); // message id -> true: each id is shown once, whatever path brought it
  var sequence = 0;
  var typingTimer = null;

  function compareItems(a, b) {
    if (a.id === null || b.id === null) {
      if (a.id === b.id) return a.rank - b.rank;
      return a.id === null ? 1 : -1;
    }
    return compareIds(a.id, b.id) || a.rank - b.rank;
  }

  function place(item) {
    var index = items.length;
    while (index > 0 && compareItems(items[index - 1], item) > 0) index--;
    items.splice(index, 0, item);
    var next = items[index + 1];
    ui.list.insertBefore(item.node, next ? next.node : null);
  }

  function unplace(item) {
    var index = items.indexOf(item);
    if (index >= 0) items.splice(index, 1);
    if (item.node.parentNode) item.node.parentNode.removeChild(item.node);
  }

  function advance(id) {
    if (id && (!state.cursor || compareIds(id, state.cursor) > 0)) state.cursor = id;
  }

  function nearEnd() {
    var body = ui.body;
    return body.scrollHeight - body.scrollTop - body.clientHeight < 80;
  }

  function scrollToEnd(force) {
    if (!state.open) return;
    if (force || nearEnd()) ui.body.scrollTop = ui.body.scrollHeight;
  }

  function renderBubble(sender, text) {
    var node = el("div", { class: "msg " + sender, "data-sender": sender });
    node.appendChild(el("div", { class: "bubble" }, text));
    return node;
  }

  function renderMessage(message, sender) {
    var node = el("div", {
      class: "msg " + sender,
      "data-testid": "cg-message",
      "data-sender": sender,
      "data-id": str(message.id),
    });
    // Visitors must always be able to tell a person from the AI.
    if (sender === "agent") node.appendChild(el("div", { class: "who" }, t.agent));
    var bubble = el("div", { class: "bubble" }, str(message.text));
    var when = message.created_at ? new Date(str(message.created_at)) : null;
    if (when && !isNaN(when.getTime())) {
      try {
        bubble.title = when.toLocaleString(lang);
      } catch (error) {
        /* a missing locale is not worth a message */
      }
    }
    node.appendChild(bubble);

    var sources = Array.isArray(message.sources) ? message.sources.slice(0, 10) : [];
    var entries = sources
      .map(function (source) {
        if (!source || typeof source !== "object") return null;
        var href = webUrl(source.url);
        var label = str(source.title).trim() || href;
        if (!label) return null;
        var li = el("li");
        li.appendChild(
          href
            ? el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, label)
            : document.createTextNode(label)
        );
        return li;
      })
      .filter(Boolean);
    if (entries.length) {
      var box = el("div", { class: "sources", "data-testid": "cg-sources" });
      box.appendChild(el("span", null, t.sources));
      var ul = el("ul");
      entries.forEach(function (li) {
        ul.appendChild(li);
      });
      box.appendChild(ul);
      node.appendChild(box);
    }

    if (sender !== "customer") {
      var cards = renderProducts(message.products);
      if (cards) {
        node.appendChild(cards);
        node.classList.add("has-products");
      }
    }

    var survey = message.survey && typeof message.survey === "object" ? message.survey : null;
    if (survey && sender !== "customer" && str(survey.id)) node.appendChild(renderSurvey(survey));

    var buttons = Array.isArray(message.buttons) ? message.buttons.slice(0, 10) : [];
    if (buttons.length && sender !== "customer") {
      var group = el("div", { class: "buttons", role: "group" });
      buttons.forEach(function (button) {
        if (!button || typeof button !== "object" || !str(button.title).trim()) return;
        var id = str(button.id);
        var title = str(button.title);
        var reply = el(
          "button",
          { type: "button", class: "reply", "data-testid": "cg-button", "data-button-id": id },
          title
        );
        on(reply, "click", function () {
          var accepted = id === HANDOFF_BUTTON ? handoff() : send(title, id);
          // One answer per question: the choices go quiet once one is taken.
          if (accepted) {
            Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) {
              b.disabled = true;
            });
            reply.setAttribute("aria-pressed", "true");
          }
        });
        group.appendChild(reply);
      });
      if (group.firstChild) node.appendChild(group);
    }
    return node;
  }

  // A satisfaction survey: five stars as a radio group (arrow keys move between them, as
  // in any radio group), sent by a button; once rated, the choice stays shown, disabled.
  function renderSurvey(survey) {
    var form = el("form", { class: "survey", "data-testid": "cg-survey" });
    var box = el("fieldset");
    box.appendChild(el("legend", null, t.rating));
    var name = "cg-rating-" + str(survey.id);
    var given = Number(survey.rating);
    var inputs = [];
    [1, 2, 3, 4, 5].forEach(function (n) {
      var id = name + "-" + n;
      var input = el("input", { type: "radio", name: name, id: id, value: String(n) });
      if (n === given) input.checked = true;
      var label = el("label", { for: id, title: t.stars.replace("{n}", String(n)) });
      label.appendChild(el("span", { class: "off", "aria-hidden": "true" }, "\u2606"));
      label.appendChild(el("span", { class: "on", "aria-hidden": "true" }, "\u2605"));
      label.appendChild(el("span", { class: "sr-only" }, t.stars.replace("{n}", String(n))));
      inputs.push(input);
      box.appendChild(input);
      box.appendChild(label);
    });
    form.appendChild(box);
    var submit = el("button", { type: "submit", class: "reply", "data-testid": "cg-rate" }, t.rate);
    form.appendChild(submit);
    var status = el("p", { class: "survey-status", role: "status" });
    form.appendChild(status);
    function done(rating) {
      inputs.forEach(function (input) {
        input.checked = Number(input.value) === rating;
        input.disabled = true;
      });
      submit.disabled = true;
      status.textContent = t.thanks;
    }
    if (given >= 1 && given <= 5) done(given);
    on(form, "submit", function (event) {
      event.preventDefault();
      var chosen = inputs.filter(function (input) {
        return input.checked;
      })[0];
      if (!chosen || submit.disabled) return;
      submit.disabled = true;
      request("POST", "/rating", { survey_id: str(survey.id), rating: Number(chosen.value) }, true)
        .then(function (response) {
          if (ok(response) && response.data && response.data.rating) {
            done(Number(response.data.rating));
            announce(t.thanks);
          } else {
            submit.disabled = false;
            showError(problemDetail(response.data) || t.failed);
          }
        })
        .catch(function () {
          submit.disabled = false;
          showError(t.network);
        });
    });
    return form;
  }

  // The page's own language formats prices ("49,90 \u20ac" on a German shop), falling
  // back to the widget's language.
  function pageLocale() {
    var declared = document.documentElement && document.documentElement.lang;
    return str(declared).trim() || lang;
  }

  function formatPrice(amount, currency) {
    var value = str(amount);
    if (!/^\d+(\.\d+)?$/.test(value)) return "";
    var code = /^[A-Z]{3}$/.test(str(currency)) ? currency : null;
    if (code) {
      try {
        return new Intl.NumberFormat(pageLocale(), { style: "currency", currency: code }).format(
          Number(value)
        );
      } catch (error) {
        try {
          return new Intl.NumberFormat(lang, { style: "currency", currency: code }).format(
            Number(value)
          );
        } catch (ignored) {
          /* an engine without Intl: the plain figure below */
        }
      }
    }
    return code ? value + " " + code : value;
  }

  // Product cards under an answer. Everything goes in as text (textContent, attributes
  // by setAttribute): a product title is the shop's data and may hold anything.
  function renderProducts(products) {
    var items = (Array.isArray(products) ? products : [])
      .filter(function (card) {
        return card && typeof card === "object" && str(card.title).trim() && card.id != null;
      })
      .slice(0, MAX_PRODUCTS);
    if (!items.length) return null;
    var box = el("div", {
      class: "products",
      role: "region",
      "aria-label": t.products,
      "data-testid": "cg-products",
    });
    var list = el("ul");
    var linked = false;
    items.forEach(function (card) {
      var title = str(card.title).trim();
      var href = webUrl(card.url);
      var item = el("li", {
        class: "product",
        "data-testid": "cg-product",
        "data-product-id": str(card.id),
      });
      var inner = href
        ? el("a", { class: "product-link", href: href, target: "_blank", rel: "noopener noreferrer" })
        : el("div", { class: "product-link" });
      if (href) linked = true;
      var image = webUrl(card.image_url);
      var placeholder = function () {
        return el("span", { class: "product-media none", "aria-hidden": "true" }, "\u25a1");
      };
      if (image) {
        var img = el("img", {
          class: "product-media",
          src: image,
          alt: title,
          width: "152",
          height: "112",
          loading: "lazy",
          decoding: "async",
          referrerpolicy: "no-referrer",
        });
        on(img, "error", function () {
          if (img.parentNode) img.parentNode.replaceChild(placeholder(), img);
        });
        inner.appendChild(img);
      } else {
        inner.appendChild(placeholder());
      }
      inner.appendChild(el("span", { class: "product-title", "data-testid": "cg-product-title" }, title));
      var variant = str(card.variant).trim();
      if (variant) inner.appendChild(el("span", { class: "product-variant" }, variant));
      var price = formatPrice(card.price, card.currency);
      if (price) {
        var line = el("span", { class: "product-price", "data-testid": "cg-product-price" }, price);
        var before = formatPrice(card.compare_at_price, card.currency);
        if (before && Number(card.compare_at_price) > Number(card.price)) {
          var was = el("s", { "data-testid": "cg-product-was" });
          was.appendChild(el("span", { class: "sr-only" }, t.was + " "));
          was.appendChild(document.createTextNode(before));
          line.appendChild(was);
        }
        inner.appendChild(line);
      }
      // Only an explicit true is "in stock": a missing or odd value never reads as available.
      var available = card.available === true;
      inner.appendChild(
        el(
          "span",
          { class: "product-stock " + (available ? "in" : "out"), "data-testid": "cg-product-stock" },
          available ? t.inStock : t.outOfStock
        )
      );
      item.appendChild(inner);
      list.appendChild(item);
    });
    // A row of cards without a single link still scrolls: the keyboard must reach it.
    if (!linked) box.setAttribute("tabindex", "0");
    box.appendChild(list);
    return box;
  }

  // `history` is true for what the visitor already knows about (the session's
  // messages, answers to their own POSTs): no unread count, no announcement.
  function addMessage(message, history) {
    if (!message || typeof message !== "object" || message.id == null) return false;
    var id = str(message.id);
    if (seen.has(id)) return false;
    seen.set(id, true);
    var sender = SENDERS.indexOf(message.sender) >= 0 ? message.sender : "system";
    if (sender === "customer" && !history) adoptPending(message);
    if (!state.lastId || compareIds(id, state.lastId) > 0) state.lastId = id;
    var stick = nearEnd();
    place({ id: id, rank: 0, node: renderMessage(message, sender) });
    if (sender === "assistant" || sender === "agent") setTyping(false);
    if (!history && sender !== "customer") {
      if (state.open) {
        announce((sender === "system" ? "" : sender === "agent" ? t.agent + ": " : ui.name + ": ") + str(message.text));
      } else {
        state.unread += 1;
        updateLauncher();
      }
    }
    scrollToEnd(stick || sender === "customer");
    return true;
  }

  function addNotice(text) {
    var node = el("div", { class: "notice", "data-testid": "cg-notice" }, text);
    place({ id: state.lastId || "", rank: ++sequence, node: node });
    scrollToEnd(false);
    if (state.open) announce(text);
  }

  function setTyping(visible) {
    clearTimeout(typingTimer);
    ui.typing.hidden = !visible;
    if (visible) {
      typingTimer = setTimeout(
        guard(function () {
          ui.typing.hidden = true;
        }),
        TYPING_TIMEOUT_MS
      );
      scrollToEnd(false);
    }
  }

  function setConversationState(next, quiet) {
    var previous = state.conversation;
    state.conversation = next;
    if (quiet || !next || next === previous) return;
    if (next === "human") addNotice(t.joined);
    else if (next === "waiting_for_human") addNotice(t.waiting);
    else if (next === "closed") addNotice(t.ended);
  }

  // -------------------------------------------------------------------------------
  // Sending. One message in flight at a time, so they arrive in the order typed.
  // A message shows at once as "pending" and is replaced by the stored one.

  var outbox = []; // [{clientId, text, buttonId, item, reauthed, tries}]
  var sending = false;

  // Writing to the shop is asking to be answered, there and on the next page: when the
  // shop does not ask for consent, the first message is when the chat starts being kept.
  function rememberOnFirstMessage() {
    if (state.persist || !local || state.consent === "no" || state.consentPending) return;
    if (state.config && state.config.ask_consent) return;
    state.persist = true;
    save(local, "token", state.token);
  }

  function submit() {
    if (state.consentPending) return;
    if (send(ui.input.value, null)) {
      ui.input.value = "";
      autosize();
      updateCounter();
    }
    ui.input.focus();
  }

  // Nothing to read (spaces, line breaks, zero-width characters): the server refuses it
  // too, so say so here rather than send it.
  var BLANK = /^[\s\u200b\u200c\u200d\u2060\ufeff]*$/;

  function send(raw, buttonId) {
    var text = str(raw).trim();
    if (BLANK.test(text)) {
      showError(t.empty);
      return false;
    }
    if (charCount(text) > MAX_CHARS) {
      showError(t.tooLong);
      return false;
    }
    showError("");
    var node = el("div", {
      class: "msg customer pending",
      "data-testid": "cg-message",
      "data-sender": "customer",
      "data-pending": "true",
    });
    node.appendChild(el("div", { class: "bubble" }, text));
    var entry = {
      clientId: uuid4(),
      text: text,
      buttonId: buttonId || null,
      item: { id: null, rank: ++sequence, node: node },
      reauthed: false,
      tries: 0,
    };
    place(entry.item);
    scrollToEnd(true);
    rememberOnFirstMessage();
    outbox.push(entry);
    pump();
    return true;
  }

  // The stream may deliver our own message before the POST answers: the pending
  // bubble gives way to it (matched by client_id when the server echoes it, else by
  // text).
  function adoptPending(message) {
    var clientId = str(message.client_id);
    var text = str(message.text).trim();
    for (var i = 0; i < outbox.length; i++) {
      var entry = outbox[i];
      if (entry.item && (clientId ? clientId === entry.clientId : entry.text === text)) {
        unplace(entry.item);
        entry.item = null;
        return;
      }
    }
  }

  function pump() {
    if (sending || !outbox.length) return;
    sending = true;
    var entry = outbox[0];
    var body = { text: entry.text, client_id: entry.clientId };
    if (entry.buttonId) body.button_id = entry.buttonId;
    request("POST", "/messages", body, true)
      .then(
        function (response) {
          if (ok(response)) {
            finish(entry);
            if (entry.item) unplace(entry.item);
            entry.item = null;
            addMessage(response.data && response.data.message, true);
            showError("");
            startRealtime(); // the conversation exists now
            next();
          } else if (response.status === 401 && !entry.reauthed) {
            entry.reauthed = true;
            refreshSession().then(retry, function () {
              fail(entry, t.failed);
            });
          } else if (response.status === 429) {
            showError(t.tooFast);
            setTimeout(guard(retry), retryAfterSeconds(response) * 1000);
          } else if (response.status >= 500 && entry.tries < 3) {
            later(entry);
          } else if (response.status === 413 || response.status === 422) {
            fail(entry, problemDetail(response.data) || t.tooLong);
          } else {
            fail(entry, problemDetail(response.data) || t.failed);
          }
        },
        function () {
          // Offline or the server unreachable. The same client_id makes a retry safe
          // even if the first attempt did arrive.
          if (entry.tries < 3) later(entry);
          else fail(entry, t.network);
        }
      )
      .catch(report);
  }

  function retry() {
    sending = false;
    pump();
  }

  function next() {
    sending = false;
    pump();
  }

  function later(entry) {
    entry.tries += 1;
    setTimeout(guard(retry), 2000 * Math.pow(2, entry.tries - 1));
  }

  function finish(entry) {
    var index = outbox.indexOf(entry);
    if (index >= 0) outbox.splice(index, 1);
  }

  // Gives the text back so nothing typed is lost, unless the stream already showed
  // the message as stored.
  function fail(entry, message) {
    finish(entry);
    if (entry.item) {
      unplace(entry.item);
      entry.item = null;
      if (!entry.buttonId && !ui.input.value) {
        ui.input.value = entry.text;
        autosize();
        updateCounter();
      }
    }
    showError(message);
    next();
  }

  function autosize() {
    var input = ui.input;
    input.style.height = "auto";
    input.style.height = Math.min(Math.max(input.scrollHeight + 3, 44), 140) + "px";
  }

  function updateCounter() {
    var count = charCount(ui.input.value);
    var over = count > MAX_CHARS;
    ui.counter.textContent = count >= COUNTER_FROM ? count + " / " + MAX_CHARS : "";
    ui.counter.classList.toggle("over", over);
    if (over) ui.input.setAttribute("aria-invalid", "true");
    else ui.input.removeAttribute("aria-invalid");
  }

  // -------------------------------------------------------------------------------
  // Handoff to a person

  var handoffBusy = false;

  function handoff() {
    if (handoffBusy) return false;
    handoffBusy = true;
    rememberOnFirstMessage();
    ui.handoff.setAttribute("aria-disabled", "true");
    var reauthed = false;
    var attempt = function () {
      request("POST", "/handoff", null, true)
        .then(
          function (response) {
            if (ok(response)) {
              done();
              showError("");
              // The request is stored as the visitor's own message; the notice comes
              // with the server's "state" frame once the conversation really changes.
              if (response.data && response.data.message) addMessage(response.data.message, true);
              startRealtime();
            } else if (response.status === 401 && !reauthed) {
              reauthed = true;
              refreshSession().then(attempt, function () {
                done();
                showError(t.failed);
              });
            } else if (response.status === 429) {
              showError(t.tooFast);
              setTimeout(guard(attempt), retryAfterSeconds(response) * 1000);
            } else {
              done();
              showError(problemDetail(response.data) || t.failed);
            }
          },
          function () {
            done();
            showError(t.network);
          }
        )
        .catch(report);
    };
    function done() {
      handoffBusy = false;
      ui.handoff.removeAttribute("aria-disabled");
    }
    attempt();
    return true;
  }

  // -------------------------------------------------------------------------------
  // Real time. A WebSocket resumes after `cursor`, so a reconnect neither loses nor
  // repeats anything (and ids are deduplicated anyway). When the socket cannot even
  // open twice in a row (a proxy that blocks it), long-polling takes over, and the
  // socket is tried again every few minutes.

  var rt = {
    wanted: false, // set once there is a conversation to follow
    suspended: false, // the page went into the back/forward cache
    ws: null,
    failures: 0, // sockets in a row that never opened
    attempt: 0, // for the backoff
    timer: null,
    ping: null,
    lastFrame: 0,
    polling: false,
    poll: null, // the poll in flight: {abort}
    pollTimer: null,
    probe: null,
  };

  function startRealtime() {
    if (rt.wanted || !state.token) return;
    rt.wanted = true;
    connect();
  }

  function backoff() {
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, rt.attempt));
    rt.attempt += 1;
    // Jitter, so a server restart is not followed by every visitor at the same instant.
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }

  function socketUrl() {
    var url = HOST.replace(/^http/, "ws") + API + "/socket?token=" + encodeURIComponent(state.token);
    return state.cursor ? url + "&after=" + encodeURIComponent(state.cursor) : url;
  }

  function connect() {
    clearTimeout(rt.timer);
    rt.timer = null;
    if (!rt.wanted || rt.suspended || rt.ws) return;
    var opened = false;
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (error) {
      socketLost(false);
      return;
    }
    rt.ws = ws;
    ws.onopen = guard(function () {
      opened = true;
      rt.failures = 0;
      rt.attempt = 0;
      rt.lastFrame = Date.now();
      stopPolling();
      clearInterval(rt.ping);
      rt.ping = setInterval(guard(heartbeat), PING_MS);
    });
    ws.onmessage = guard(function (event) {
      rt.lastFrame = Date.now();
      var frame = null;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handleFrame(frame);
    });
    ws.onclose = guard(function () {
      if (rt.ws !== ws) return;
      dropSocket();
      socketLost(opened);
    });
    ws.onerror = function () {
      /* a close event always follows */
    };
  }

  function dropSocket() {
    var ws = rt.ws;
    rt.ws = null;
    clearInterval(rt.ping);
    rt.ping = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch (error) {
        /* already closed */
      }
    }
  }

  function heartbeat() {
    var ws = rt.ws;
    if (!ws || ws.readyState !== 1) return;
    // A dead connection (sleep, network change) can look open for minutes; closing
    // it may itself hang, so it is dropped and replaced at once.
    if (Date.now() - rt.lastFrame > STALE_MS) {
      dropSocket();
      socketLost(true);
      return;
    }
    ws.send('{"type":"ping"}');
  }

  function socketLost(opened) {
    if (!rt.wanted || rt.suspended) return;
    if (!opened) rt.failures += 1;
    if (rt.polling) {
      scheduleProbe();
    } else if (rt.failures >= 2) {
      startPolling();
      scheduleProbe();
    } else {
      clearTimeout(rt.timer);
      rt.timer = setTimeout(guard(connect), backoff());
    }
  }

  // A new token: an open socket still carries the old one.
  function restartSocket() {
    if (rt.ws) {
      dropSocket();
      connect();
    }
  }

  function scheduleProbe() {
    clearTimeout(rt.probe);
    rt.probe = setTimeout(guard(connect), SOCKET_PROBE_MS);
  }

  function startPolling() {
    if (rt.polling) return;
    rt.polling = true;
    rt.attempt = 0;
    poll();
  }

  function stopPolling() {
    rt.polling = false;
    clearTimeout(rt.pollTimer);
    clearTimeout(rt.probe);
    rt.pollTimer = rt.probe = null;
    if (rt.poll) {
      rt.poll.abort();
      rt.poll = null;
    }
  }

  function pollLater(delay) {
    clearTimeout(rt.pollTimer);
    rt.pollTimer = setTimeout(guard(poll), delay);
  }

  function poll() {
    rt.pollTimer = null;
    if (!rt.polling || rt.suspended || rt.poll) return;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var current = {
      abort: function () {
        if (controller) controller.abort();
      },
    };
    rt.poll = current;
    var watchdog = setTimeout(guard(current.abort), POLL_TIMEOUT_MS);
    var started = Date.now();
    var path = "/events" + (state.cursor ? "?after=" + encodeURIComponent(state.cursor) : "");
    var settle = function () {
      clearTimeout(watchdog);
      if (rt.poll !== current) return false; // stopped meanwhile: the socket took over
      rt.poll = null;
      return rt.polling;
    };
    request("GET", path, null, true, controller && controller.signal)
      .then(
        function (response) {
          if (!settle()) return;
          if (response.status === 200 && response.data) {
            rt.attempt = 0;
            var events = Array.isArray(response.data.events) ? response.data.events : [];
            events.forEach(guard(handleFrame));
            if (response.data.cursor) advance(str(response.data.cursor));
            // A server (or proxy) that answers empty at once must not become a busy loop.
            pollLater(!events.length && Date.now() - started < 1000 ? 3000 : 0);
          } else if (response.status === 401) {
            refreshSession().then(
              function () {
                pollLater(0);
              },
              function () {
                pollLater(backoff());
              }
            );
          } else {
            pollLater(backoff());
          }
        },
        function () {
          if (settle()) pollLater(backoff());
        }
      )
      .catch(report);
  }

  function handleFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "message" && frame.message && typeof frame.message === "object") {
      if (frame.message.id != null) advance(str(frame.message.id));
      addMessage(frame.message, false);
    } else if (frame.type === "typing") {
      setTyping(frame.on === true);
    } else if (frame.type === "state") {
      setConversationState(str(frame.state), false);
    }
    // "pong" and anything unknown only prove the connection is alive.
  }

  // Back online, or the tab visible again: do not wait out a long backoff.
  function wake() {
    if (!rt.wanted || rt.suspended) return;
    rt.attempt = 0;
    if (rt.ws) {
      heartbeat();
    } else if (rt.polling) {
      if (rt.pollTimer) pollLater(0);
      connect(); // maybe the network that blocked sockets is gone
    } else {
      connect();
    }
  }

  // An open socket keeps a page out of the back/forward cache: let go when leaving.
  function suspend() {
    if (!rt.wanted) return;
    rt.suspended = true;
    clearTimeout(rt.timer);
    dropSocket();
    stopPolling();
  }

  function resume() {
    if (!rt.suspended) return;
    rt.suspended = false;
    rt.failures = 0;
    rt.attempt = 0;
    connect();
  }

  // -------------------------------------------------------------------------------
  // Public API and start

  var api = Object.freeze({
    open: guard(function () {
      open(true);
    }),
    close: guard(function () {
      close(true);
    }),
    toggle: guard(function () {
      toggle(true);
    }),
  });

  try {
    Object.defineProperty(window, "CybergineWidget", {
      value: api,
      writable: false,
      enumerable: false,
      configurable: false,
    });
  } catch (error) {
    report(error);
  }

  if (!HOST || !KEY || typeof fetch !== "function" || !document.documentElement.attachShadow) return;

  try {
    on(window, "online", wake);
    on(document, "visibilitychange", function () {
      if (document.visibilityState === "visible") wake();
    });
    on(window, "pagehide", suspend);
    on(window, "pageshow", function (event) {
      if (event.persisted) resume();
    });
    if (document.readyState === "loading") {
      on(document, "DOMContentLoaded", function () {
        start(0);
      });
    } else {
      start(0);
    }
  } catch (error) {
    report(error);
  }
})();
