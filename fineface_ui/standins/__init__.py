"""Stand-ins for the released models, for work without the Hub: tiny random models and face models
written in the real file formats, and the full-size layouts built from the published configs."""
