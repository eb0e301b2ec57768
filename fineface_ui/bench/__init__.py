"""The benchmark (`python -m fineface_ui.bench`) and its yardstick, the paper's attention written out literally."""
