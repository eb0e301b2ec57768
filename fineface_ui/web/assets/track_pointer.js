() => {
  window.fineFacePointerDown = false;
  const track = (down) => () => { window.fineFacePointerDown = down; };
  window.addEventListener("pointerdown", track(true), true);
  window.addEventListener("pointerup", track(false), true);
  window.addEventListener("pointercancel", track(false), true);
}
