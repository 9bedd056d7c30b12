"""The shared core of the Billbee -> sevDesk connector: clients, models, bookkeeping rules, storage, pipeline."""
