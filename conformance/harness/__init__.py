"""Process and IPC plumbing shared by the cases: children, barriers, rights, descriptor listing, leak checks."""
