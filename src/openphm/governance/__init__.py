"""Governance: what each role may see, and disclosure control on everything published."""
