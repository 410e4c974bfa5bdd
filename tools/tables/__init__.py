"""The result tables, ``python -m tools.tables``: finished runs read back (``results``), the paper's arithmetic
(``arithmetic``), reports (``report``) and their markdown/CSV (``render``), the paper's numbers and the figure."""
