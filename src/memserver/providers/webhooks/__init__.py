"""Webhook delivery: the adapter that talks to a receiver (`signature`: how a delivery is signed and checked)."""
