// Comptoir ticket pages: canned responses, live dashboard. No inline script (the CSP forbids it).
(function () {
  "use strict";

  // Canned responses: insert the chosen text into the target textarea.
  document.querySelectorAll("select.canned").forEach(function (select) {
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var target = document.getElementById(select.dataset.target);
      if (!option || !option.dataset.text || !target) return;
      var text = option.dataset.text;
      if (select.dataset.agent !== undefined) {
        // On the new-ticket form the number is not known yet; the customer is the one chosen.
        // A reseller's list or a staff member's picker (whose text is the chosen customer's name).
        var customer = document.getElementById("customer_id");
        var customerName = "";
        if (customer && customer.tagName === "SELECT") {
          customerName = customer.selectedIndex >= 0 ? customer.options[customer.selectedIndex].text : "";
        } else if (customer) {
          customerName = customer.value;
        }
        text = text.split("{client}").join(customerName).split("{agent}").join(select.dataset.agent).split("{numero}").join("");
      }
      target.value = target.value ? target.value + "\n\n" + text : text;
      target.focus();
      select.selectedIndex = 0;
    });
  });

  // Dashboard: reload the live part when a ticket changes (server-sent events), and every minute anyway.
  var live = document.getElementById("dashboard-live");
  if (!live) return;
  var pending = null;
  function reload() {
    pending = null;
    fetch(live.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.dataset.reloads = String(Number(live.dataset.reloads || "0") + 1);
        }
      })
      .catch(function () {});
  }
  function soon() {
    // Several changes in a burst give one reload.
    if (pending === null) pending = setTimeout(reload, 300);
  }
  setInterval(reload, 60000);
  if (window.EventSource) {
    var source = new EventSource("/api/v1/tickets/events");
    source.addEventListener("ticket", soon);
    source.addEventListener("open", function () { live.dataset.live = "on"; });
  }
})();
