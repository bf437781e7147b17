// The console's few behaviours beyond htmx: keyboard shortcuts, the hold's countdown, Ctrl+Enter.
(function () {
  "use strict";

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  function go(url) {
    window.location.assign(url);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var form = event.target.closest("form[data-ctrl-enter]");
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var dialog = document.getElementById("shortcuts");
    switch (event.key) {
      case "f":
      case "F":
        go("/console/queue");
        break;
      case "n":
      case "N":
        go("/console/requests/new");
        break;
      case "/":
        event.preventDefault();
        go("/console/search");
        break;
      case "s":
      case "S": {
        var title = document.getElementById("suggestions-title");
        if (title) {
          event.preventDefault();
          title.focus();
        }
        break;
      }
      case "?":
        if (dialog && !dialog.open) {
          dialog.showModal();
        }
        break;
      default:
        if (/^[1-8]$/.test(event.key)) {
          var button = document.querySelector('[data-slot-number="' + event.key + '"]');
          if (button) {
            event.preventDefault();
            button.focus();
          }
        }
    }
  });

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-shortcuts-open]");
    var dialog = document.getElementById("shortcuts");
    if (opener && dialog) {
      dialog.showModal();
    }
  });

  // A plain form is sent once: a second click while it goes does nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-once")) {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
    }
  });

  // Every htmx request carries the session's CSRF token (forms posted without htmx carry a field).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.querySelector('meta[name="csrf-token"]');
    if (token && token.content) {
      event.detail.headers["X-CSRF-Token"] = token.content;
    }
  });

  // The hold's countdown: minutes and seconds left, then a clear "expired".
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-expires]").forEach(function (element) {
      var left = Math.round((Date.parse(element.getAttribute("data-expires")) - now) / 1000);
      if (left <= 0) {
        element.textContent = "0 s";
        element.closest(".countdown").classList.add("expired");
        element.closest(".countdown").firstChild.textContent = "Réservation expirée : confirmez vite si le créneau est encore libre, ou choisissez-en un autre. Il restait ";
        return;
      }
      var minutes = Math.floor(left / 60);
      var seconds = left % 60;
      element.textContent = (minutes ? minutes + " min " : "") + (seconds < 10 && minutes ? "0" : "") + seconds + " s";
      element.closest(".countdown").classList.toggle("ending", left < 60);
    });
  }
  window.setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);

  // After htmx swaps new content in, bring the keyboard to what changed.
  document.addEventListener("htmx:afterSettle", function (event) {
    var focus = event.detail.elt.querySelector("[autofocus]");
    if (focus && !typing(document.activeElement)) {
      focus.focus();
    }
  });
})();
