"""``cxw report``: one self-contained offline HTML page of the experience, read from the served marts only."""
