"""The ground every package stands on: the item schema, trait definitions, the versioned store, table io."""
