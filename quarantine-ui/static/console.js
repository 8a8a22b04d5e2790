// Progressive enhancement only: every page works without this file.
// - "select all" checkboxes in the quarantine list
// - a confirmation before destructive buttons (data-confirm)
document.addEventListener('change', (e) => {
  const t = e.target;
  if (t instanceof HTMLInputElement && t.dataset.selectAll !== undefined) {
    for (const box of document.querySelectorAll('input[name="id"]')) box.checked = t.checked;
  }
});
document.addEventListener('submit', (e) => {
  const btn = e.submitter;
  const msg = (btn && btn.dataset && btn.dataset.confirm) || (e.target instanceof HTMLElement && e.target.dataset.confirm);
  if (msg && !window.confirm(msg)) e.preventDefault();
});
