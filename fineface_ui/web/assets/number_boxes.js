() => {
  // A slider's number box sends its value only when it loses focus: Enter should send it too.
  const isNumberBox = (element) => element?.dataset?.testid === "number-input";
  window.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && isNumberBox(event.target)) event.target.blur();
  }, true);
  // Gradio sends the typed value before clamping it to the slider's range, and the server then
  // rejects a value out of range with an error. Clamped here first (a capturing listener runs
  // before the box's own), the value sent is the one the box ends up showing.
  window.addEventListener("blur", (event) => {
    const box = event.target;
    if (!isNumberBox(box) || box.value === "") return;
    const clamped = Math.min(Math.max(Number(box.value), Number(box.min)), Number(box.max));
    if (clamped !== Number(box.value)) {
      box.value = String(clamped);
      box.dispatchEvent(new Event("input", { bubbles: true }));
    }
  }, true);
}
