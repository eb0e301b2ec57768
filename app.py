"""Start the FineFace UI web app: `python app.py` (add --random-weights to try it without model files).

A Hugging Face Space runs this file; `fineface-ui serve` does the same from any folder.
"""

import sys

from fineface_ui.web.server import main

if __name__ == "__main__":
    sys.exit(main())
