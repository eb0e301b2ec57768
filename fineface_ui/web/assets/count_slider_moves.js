(keyboardChanges, rangeMoves) => {
  // A slider's input event, sorted (ui.py says why): a move of the range itself, by pointer or by
  // arrow keys, is previewed; one by keys also renders in full. Typing in the slider's number box is
  // neither: its value may lie out of range until the box clamps it on leaving.
  const onRange = document.activeElement?.type === "range";
  const byKeyboard = onRange && !window.fineFacePointerDown;
  const moved = onRange || window.fineFacePointerDown;
  return [keyboardChanges + (byKeyboard ? 1 : 0), rangeMoves + (moved ? 1 : 0)];
}
