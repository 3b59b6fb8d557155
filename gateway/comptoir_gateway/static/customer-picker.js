// Comptoir customer picker (templates/customer_picker.html, web/customer_picker.py), shared by the ticket pages and
// the reports page: suggestions from /clients/recherche as one types; the chosen customer's id goes in the hidden
// customer_id. Without this script the typed text is resolved by the server. No inline script (the CSP forbids it).
(function () {
  "use strict";

  var pickers = 0;
  document.querySelectorAll(".customer-picker").forEach(function (box) {
    var input = box.querySelector("input[name=customer_name]");
    var idField = box.querySelector("input[name=customer_id]");
    var labelField = box.querySelector("input[name=customer_label]");
    if (!input || !idField || !labelField) return;
    pickers += 1;
    var list = document.createElement("ul");
    list.id = (input.id || "customer-picker-" + pickers) + "-suggestions";
    list.className = "picker-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Clients suggérés");
    list.hidden = true;
    var status = document.createElement("p");
    status.className = "picker-status muted small";
    status.setAttribute("role", "status");
    box.appendChild(list);
    box.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);

    var items = [];
    var active = -1;
    var timer = null;
    var asked = 0;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function move(step) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) return;
      var count = options.length;
      active = active < 0 ? (step > 0 ? 0 : count - 1) : (active + step + count) % count;
      options.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      input.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({ block: "nearest" });
    }
    function choose(item) {
      idField.value = item.id;
      labelField.value = item.name;
      input.value = item.name;
      status.textContent = "";
      close();
    }
    function show(found) {
      items = found;
      list.textContent = "";
      found.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var name = document.createElement("span");
        name.textContent = item.name;
        option.appendChild(name);
        if (item.detail) {
          var detail = document.createElement("span");
          detail.className = "muted small";
          detail.textContent = item.detail;
          option.appendChild(detail);
        }
        option.addEventListener("mousedown", function (event) { event.preventDefault(); });
        option.addEventListener("click", function () { choose(item); });
        list.appendChild(option);
      });
      active = -1;
      input.removeAttribute("aria-activedescendant");
      // An answer arriving after the field was left does not open the list over the rest of the form.
      var open = found.length > 0 && document.activeElement === input;
      list.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      // The count is for screen readers only; "none" is for everyone.
      status.className = found.length ? "picker-status sr-only" : "picker-status muted small";
      status.textContent = found.length
        ? found.length + (found.length > 1 ? " clients proposés" : " client proposé")
        : "Aucun client ne correspond.";
    }
    function search() {
      timer = null;
      var mine = ++asked;
      fetch(box.dataset.search + "?q=" + encodeURIComponent(input.value.trim()), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
        .then(function (data) { if (mine === asked) show(data.items || []); })
        .catch(function () {
          if (mine !== asked) return;
          show([]);
          status.className = "picker-status muted small";
          status.textContent = "Recherche des clients indisponible : le nom saisi sera recherché à l'envoi.";
        });
    }
    input.addEventListener("input", function () {
      // Typed text is no longer the chosen customer's name: the server resolves it unless a suggestion is picked.
      idField.value = "";
      labelField.value = "";
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) search();
        else move(event.key === "ArrowDown" ? 1 : -1);
      } else if (event.key === "Enter") {
        if (!list.hidden && active >= 0) {
          event.preventDefault();
          choose(items[active]);
        }
      } else if (event.key === "Escape") {
        if (!list.hidden) {
          event.preventDefault();
          close();
        }
      }
    });
    input.addEventListener("blur", close);
  });
})();
