// Wiki editor: live preview (HTML sanitised by the wiki service) and images pasted into the text, uploaded as
// attachments of the page. Served from our origin: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  const form = document.getElementById("wiki-editor");
  if (!form) {
    return;
  }
  const textarea = form.querySelector("textarea[name=content]");
  const preview = document.getElementById("preview");
  const status = document.getElementById("editor-status");
  const csrfToken = form.querySelector("input[name=csrf_token]").value;
  const customerId = form.querySelector("input[name=customer_id]").value;
  let timer = null;
  let sequence = 0;

  async function refreshPreview() {
    const mine = ++sequence;
    const body = new FormData();
    body.append("content", textarea.value);
    body.append("customer_id", customerId);
    body.append("csrf_token", csrfToken);
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const data = await response.json();
      if (mine !== sequence) {
        return; // a newer preview is on its way
      }
      if (response.ok) {
        preview.innerHTML = data.html;
        preview.dataset.state = "ready";
        status.textContent = "";
      } else {
        status.textContent = data.detail || "Aperçu indisponible.";
      }
    } catch (error) {
      status.textContent = "Aperçu indisponible pour le moment.";
    }
  }

  function insertAtCursor(text) {
    const start = textarea.selectionStart;
    const end = textarea.selectionEnd;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
  }

  async function uploadImage(file) {
    const body = new FormData();
    body.append("file", file, file.name || "image.png");
    body.append("csrf_token", csrfToken);
    status.textContent = "Envoi de l'image…";
    const response = await fetch(form.dataset.attachmentsUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const data = await response.json();
    if (!response.ok) {
      status.textContent = data.detail || "Image refusée.";
      return;
    }
    const label = data.filename.replace(/[\[\]\\]/g, "");
    insertAtCursor("![" + label + "](" + data.url + ")");
    status.textContent = "Image ajoutée.";
  }

  textarea.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 300);
  });

  textarea.addEventListener("paste", async function (event) {
    const files = Array.from((event.clipboardData && event.clipboardData.files) || []).filter(function (file) {
      return file.type.indexOf("image/") === 0;
    });
    if (files.length === 0) {
      return;
    }
    event.preventDefault();
    if (!form.dataset.attachmentsUrl) {
      status.textContent = "Enregistrez la page pour y coller des images.";
      return;
    }
    for (const file of files) {
      await uploadImage(file);
    }
    refreshPreview();
  });

  refreshPreview();
})();
