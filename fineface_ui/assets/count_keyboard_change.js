(count) => {
  const byKeyboard = !window.fineFacePointerDown && document.activeElement?.type === "range";
  return byKeyboard ? count + 1 : count;
}
