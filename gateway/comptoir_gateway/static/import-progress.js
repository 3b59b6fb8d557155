// Progress of an import started from the admin page: polls the job and reloads the page when it ends.
(function () {
  const box = document.getElementById("import-job");
  if (!box) { return; }
  async function poll() {
    let p;
    try {
      const response = await fetch(box.dataset.progressUrl, {credentials: "same-origin"});
      if (!response.ok) { setTimeout(poll, 3000); return; }
      p = await response.json();
    } catch (error) { setTimeout(poll, 3000); return; }
    document.getElementById("bar").value = p.percent;
    document.getElementById("done").textContent = p.done;
    document.getElementById("total").textContent = p.total;
    document.getElementById("rate").textContent = p.rate;
    document.getElementById("left").textContent = p.seconds_left;
    if (p.status === "done" || p.status === "failed") { window.location.reload(); return; }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
