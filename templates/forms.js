/* proprofs-bridge forms.js: gives a form on your page the bridge's time token.
 *
 * <script src="https://bridge.example.com/forms.js" defer></script>
 *
 * Every <form> whose action is https://bridge.example.com/forms/<route> gets a hidden
 * _ts field holding a token fetched from the bridge when the page loads: the route's
 * spam.min_seconds then knows how long the page was open. Nothing else is changed. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var bridge = new URL(script.src).origin;
  var ROUTE = /^\/forms\/([a-z0-9][a-z0-9_-]{0,63})\/?$/;

  function stamp(form, route) {
    fetch(bridge + "/forms/" + route + "/token", { credentials: "omit", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer || !answer.token) return;
        var field = form.querySelector('input[name="' + answer.field + '"]');
        if (!field) {
          field = document.createElement("input");
          field.type = "hidden";
          field.name = answer.field;
          form.appendChild(field);
        }
        field.value = answer.token;
      })
      .catch(function () { /* the post is then refused with a message to reload */ });
  }

  function scan() {
    var forms = document.querySelectorAll("form[action]");
    for (var i = 0; i < forms.length; i++) {
      var action;
      try { action = new URL(forms[i].getAttribute("action"), document.baseURI); }
      catch (e) { continue; }
      var match = action.origin === bridge && ROUTE.exec(action.pathname);
      if (match) stamp(forms[i], match[1]);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
