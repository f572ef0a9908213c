// Keyboard labeling: 1-4 pick an answer, Enter submits, S skips.
// Keys typed into the note box are left alone (Ctrl+Enter still submits from there).
document.addEventListener("keydown", (event) => {
  const form = document.getElementById("label-form");
  if (!form || event.altKey || event.metaKey) return;
  const typing = event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement
    && event.target.type === "text";
  if (event.key === "Enter" && (!typing || event.ctrlKey)) {
    event.preventDefault();
    form.requestSubmit();  // runs the browser's check that an answer is picked
    return;
  }
  if (typing || event.ctrlKey) return;
  const radio = form.querySelector(`input[name="choice"][data-key="${event.key}"]`);
  if (radio) {
    radio.checked = true;
    radio.focus();
  } else if (event.key === "s" || event.key === "S") {
    document.getElementById("skip-form").requestSubmit();
  }
});
