"""Webhook delivery: the adapter that talks to a receiver (`sender`) and how a delivery is signed (`signature`)."""
