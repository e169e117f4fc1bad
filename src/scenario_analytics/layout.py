"""Names in a snapshot store that more than one layer knows.

The store (`publish/store.py`) owns its layout and tells its own bookkeeping from
snapshots; the ledger (`ingest/ledger.py`) keeps its files in the store under its
folder. Both read the name here, so neither imports the other.
"""

LEDGER_NAME = ".ledger"  # a folder in the store: the ledger's catalog and parts
